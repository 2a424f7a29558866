// "Users" (admins only): who has an account on this server, and adding one.
import { api, redirectIfSignedOut } from '../api.js';
import { byId, el, status, formatDate, busy } from '../dom.js';
import { accountProblem } from '../validate.js';

export function usersPanel() {
  const panel = byId('users-panel');
  const list = byId('users-list');
  const form = byId('add-user-form');
  const idInput = byId('new-user-id');
  const passwordInput = byId('new-user-password');
  const adminInput = byId('new-user-admin');
  const button = byId('add-user');
  const message = byId('users-status');
  panel.hidden = false;

  async function refresh() {
    try {
      const { users = [] } = await api('/acctapi/users');
      list.replaceChildren(...users.map(row));
    } catch (err) {
      if (!redirectIfSignedOut(err)) status(message, 'error', `Could not load users: ${err.message}`);
    }
  }

  function row(user) {
    const since = formatDate(user.created_at);
    return el('li', { 'data-user': user.user_id },
      el('span', { className: 'user-id' }, user.user_id),
      user.is_admin && el('span', { className: 'badge' }, 'admin'),
      since && el('span', { className: 'since' }, `since ${since}`));
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const userId = idInput.value.trim().toLowerCase();
    const password = passwordInput.value;
    const problem = accountProblem(userId, password);
    if (problem) {
      status(message, 'error', problem);
      return;
    }
    await busy(button, async () => {
      try {
        await api('/acctapi/users', { method: 'POST', body: { user_id: userId, password, is_admin: adminInput.checked } });
        form.reset();
        status(message, 'success', `Added ${userId}. Give them their password privately.`);
        await refresh();
      } catch (err) {
        if (!redirectIfSignedOut(err)) status(message, 'error', `Could not add ${userId}: ${err.message}`);
      }
    });
  });

  return { refresh };
}
