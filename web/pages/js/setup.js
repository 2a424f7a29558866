// First-run setup: creates the admin account with the one-time token from the
// link the server printed, which also signs the new admin in.
import { api } from './api.js';
import { byId, say, busy } from './dom.js';
import { accountProblem } from './validate.js';

const form = byId('setup-form');
const userInput = byId('user_id');
const passwordInput = byId('password');
const repeatInput = byId('password2');
const button = byId('create');
const error = byId('setup-error');
const token = new URLSearchParams(location.search).get('token') || '';

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  say(error, '');
  const userId = userInput.value.trim().toLowerCase();
  const password = passwordInput.value;
  const problem = accountProblem(userId, password)
    || (password !== repeatInput.value ? 'The two passwords differ.' : '');
  if (problem) {
    say(error, problem);
    // To the field to mend: the name, else the password, else its repeat.
    const nameIsFine = accountProblem(userId, 'any long enough password') === '';
    const passwordIsFine = accountProblem(userId, password) === '';
    (!nameIsFine ? userInput : !passwordIsFine ? passwordInput : repeatInput).focus();
    return;
  }
  await busy(button, async () => {
    try {
      await api('/acctapi/setup', { method: 'POST', body: { token, user_id: userId, password } });
      // replace(): the setup link is spent, so Back should not return to it.
      location.replace('/home');
    } catch (err) {
      say(error, err.message);
    }
  });
});
