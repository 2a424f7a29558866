// "Your password": change it, knowing the current one. The server signs out every
// other session of the owner; this one stays.
import { api, redirectIfSignedOut } from '../api.js';
import { byId, status, busy } from '../dom.js';
import { MIN_PASSWORD } from '../validate.js';

export function passwordPanel() {
  const form = byId('password-form');
  const current = byId('password-current');
  const next = byId('password-new');
  const repeat = byId('password-repeat');
  const button = byId('password-change');
  const message = byId('password-status');

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!current.value) return fail('Type your current password.', current);
    if (next.value.length < MIN_PASSWORD) return fail(`Passwords need at least ${MIN_PASSWORD} characters.`, next);
    if (next.value !== repeat.value) return fail('The two new passwords differ.', repeat);
    await busy(button, async () => {
      try {
        const reply = await api('/acctapi/password', { method: 'PUT', body: { current_password: current.value, new_password: next.value } });
        form.reset();
        const elsewhere = reply.signed_out_elsewhere > 0 ? ` Signed out in ${reply.signed_out_elsewhere} other ${reply.signed_out_elsewhere === 1 ? 'place' : 'places'}.` : '';
        status(message, 'success', `Password changed.${elsewhere}`);
      } catch (err) {
        if (redirectIfSignedOut(err)) return;
        fail(err.status === 403 ? 'That is not your current password.' : `Not changed: ${err.message}`, err.status === 403 ? current : null);
      }
    });
  });

  function fail(text, field) {
    status(message, 'error', text);
    if (field) {
      field.focus();
      field.select?.();
    }
  }
}
