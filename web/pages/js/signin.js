// The sign-in page: posts the credentials, then goes where the visitor was headed.
import { api, ApiError } from './api.js';
import { byId, say, busy } from './dom.js';
import { safeNext } from './validate.js';

const form = byId('signin-form');
const userInput = byId('user_id');
const passwordInput = byId('password');
const button = byId('signin');
const error = byId('signin-error');

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  say(error, '');
  const userId = userInput.value.trim().toLowerCase();
  const password = passwordInput.value;
  if (!userId || !password) {
    say(error, 'Enter your user name and password.');
    (userId ? passwordInput : userInput).focus();
    return;
  }
  await busy(button, async () => {
    try {
      await api('/acctapi/login', { method: 'POST', body: { user_id: userId, password } });
      location.assign(safeNext(new URLSearchParams(location.search).get('next')));
    } catch (err) {
      // Deliberately vague on 401: never say which of the two was wrong.
      const message = err instanceof ApiError && err.status === 401
        ? 'That user name and password do not match.'
        : err.message;
      say(error, message);
      passwordInput.select();
      passwordInput.focus();
    }
  });
});
