// "Users" (admins only): who has an account on this server, adding one, and for
// the others: a new password (lost ones) and turning off two-factor sign-in (a lost phone).
import { api, redirectIfSignedOut } from '../api.js';
import { byId, el, say, status, formatDate, busy, refocus } from '../dom.js';
import { MIN_PASSWORD, accountProblem } from '../validate.js';

/** @param {string} self  the signed-in admin, whose own password and 2FA have their own panels */
export function usersPanel(self) {
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
    let actions = null;
    if (user.user_id !== self) {
      const setPassword = el('button', { type: 'button', className: 'button small', 'aria-label': `Set a new password for ${user.user_id}` }, 'New password');
      setPassword.addEventListener('click', () => askPassword(user.user_id));
      // Offered only to someone who has a second factor to lose.
      let reset = null;
      if (user.two_factor) {
        reset = el('button', { type: 'button', className: 'button small', 'aria-label': `Turn off two-factor sign-in for ${user.user_id}` }, 'Turn off 2FA');
        reset.addEventListener('click', () => resetTwoFactor(user.user_id, reset));
      }
      const remove = el('button', { type: 'button', className: 'button small danger', 'aria-label': `Remove ${user.user_id} and their data` }, 'Remove');
      remove.addEventListener('click', () => removeUser(user.user_id, remove));
      actions = el('span', { className: 'user-actions' }, setPassword, reset, remove);
    }
    return el('li', { 'data-user': user.user_id },
      el('span', { className: 'user-id' }, user.user_id),
      user.is_admin && el('span', { className: 'badge' }, 'admin'),
      user.two_factor && el('span', { className: 'badge', title: 'Signs in with a code from an authenticator app' }, '2FA'),
      since && el('span', { className: 'since' }, `since ${since}`),
      actions);
  }

  const dialog = byId('user-password-dialog');
  const dialogForm = byId('user-password-form');
  const dialogInput = byId('user-password-value');
  const dialogError = byId('user-password-error');
  let dialogUser = '';

  function askPassword(userId) {
    dialogUser = userId;
    byId('user-password-name').textContent = userId;
    dialogForm.reset();
    say(dialogError, '');
    dialog.showModal();
    dialogInput.focus();
  }

  // Cancel is a plain button, so Enter in the field submits with "Set password".
  byId('user-password-cancel').addEventListener('click', () => dialog.close('cancel'));
  dialogForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const password = dialogInput.value;
    if (password.length < MIN_PASSWORD) {
      say(dialogError, `Passwords need at least ${MIN_PASSWORD} characters.`);
      dialogInput.focus();
      return;
    }
    await busy(byId('user-password-set'), async () => {
      try {
        await api(`/acctapi/users/${encodeURIComponent(dialogUser)}/password`, { method: 'PUT', body: { password } });
        dialog.close('set');
        status(message, 'success', `New password set for ${dialogUser}; they were signed out everywhere. Give it to them privately.`);
      } catch (err) {
        if (!redirectIfSignedOut(err)) say(dialogError, `Not set: ${err.message}`);
      }
    });
  });

  /** Asks in the page's own dialog, as removing an app does; resolves to whether to go ahead. */
  function askRemoval(userId) {
    const ask = byId('remove-user-dialog');
    byId('remove-user-name').textContent = userId;
    ask.returnValue = 'cancel';
    return new Promise((resolve) => {
      ask.addEventListener('close', () => resolve(ask.returnValue === 'remove'), { once: true });
      ask.showModal();
    });
  }

  async function removeUser(userId, button) {
    if (!(await askRemoval(userId))) {
      button.focus();
      return;
    }
    await busy(button, async () => {
      try {
        await api(`/acctapi/users/${encodeURIComponent(userId)}`, { method: 'DELETE' });
        status(message, 'success', `Removed ${userId} and their data.`);
        await refresh();
        refocus(list, byId('users-heading'));
      } catch (err) {
        if (!redirectIfSignedOut(err)) status(message, 'error', `Could not remove ${userId}: ${err.message}`);
      }
    });
  }

  async function resetTwoFactor(userId, button) {
    if (!confirm(`Turn off two-factor sign-in for ${userId}? They then sign in with their password alone, and can set it up again.`)) return;
    await busy(button, async () => {
      try {
        const reply = await api(`/acctapi/users/${encodeURIComponent(userId)}/2fa-reset`, { method: 'POST' });
        status(message, 'success', reply.had_two_factor ? `Two-factor sign-in is off for ${userId}.` : `${userId} had no two-factor sign-in.`);
        await refresh();
        // The row was drawn again without this button: keep the keyboard on the user's row.
        list.querySelector(`li[data-user="${CSS.escape(userId)}"] button`)?.focus();
      } catch (err) {
        if (!redirectIfSignedOut(err)) status(message, 'error', `Could not turn it off for ${userId}: ${err.message}`);
      }
    });
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
