// The sign-in page: posts the credentials, then goes where the visitor was headed.
// When the account has two-factor sign-in on, the server answers `totp_required`
// and the page asks for a code, sending the password again with it (the server
// keeps no half-signed-in state).
import { api, ApiError } from './api.js';
import { byId, say, busy } from './dom.js';
import { safeNext } from './validate.js';

const form = byId('signin-form');
const userInput = byId('user_id');
const passwordInput = byId('password');
const button = byId('signin');
const error = byId('signin-error');
const lead = byId('signin-lead');
const passwordStep = byId('password-step');
const codeStep = byId('code-step');
const totpField = byId('totp-field');
const totpInput = byId('totp');
const recoveryField = byId('recovery-field');
const recoveryInput = byId('recovery_code');
const switchFactor = byId('use-recovery');

let askingCode = false;
let useRecovery = false;
const initialLead = lead.textContent;

function showCodeStep() {
  askingCode = true;
  passwordStep.hidden = true;
  codeStep.hidden = false;
  lead.textContent = 'Your account has two-factor sign-in on.';
  button.textContent = 'Verify';
  showFactor(false);
}

function showFactor(recovery) {
  useRecovery = recovery;
  totpField.hidden = recovery;
  recoveryField.hidden = !recovery;
  switchFactor.textContent = recovery ? 'Use a code from the app instead' : 'Use a recovery code instead';
  (recovery ? recoveryInput : totpInput).focus();
}

// Sent back here by a page whose session ended (signed out in another tab, expired).
if (new URLSearchParams(location.search).get('reason') === 'ended') {
  lead.textContent = 'Your session ended, so you were signed out. Sign in again to go on where you were.';
}

switchFactor.addEventListener('click', () => {
  say(error, '');
  showFactor(!useRecovery);
});

// Back from the code step to the name and password (another account, a mistyped name).
byId('other-account').addEventListener('click', () => {
  askingCode = false;
  say(error, '');
  totpInput.value = '';
  recoveryInput.value = '';
  passwordInput.value = '';
  codeStep.hidden = true;
  passwordStep.hidden = false;
  lead.textContent = initialLead;
  button.textContent = 'Sign in';
  userInput.select();
  userInput.focus();
});

/** The body to send: the password, plus the code when this is the second step. */
function credentials() {
  const body = { user_id: userInput.value.trim().toLowerCase(), password: passwordInput.value };
  if (!askingCode) return body;
  if (useRecovery) return { ...body, recovery_code: recoveryInput.value.trim() };
  return { ...body, totp: totpInput.value.replace(/\s/g, '') };
}

/** What is missing before sending, or '' when the form is complete. */
function missing(body) {
  if (!body.user_id || !body.password) return 'Enter your user name and password.';
  if (askingCode && useRecovery && !body.recovery_code) return 'Enter one of your recovery codes.';
  if (askingCode && !useRecovery && !/^\d{6}$/.test(body.totp)) return 'Enter the six digits your authenticator app shows.';
  return '';
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  say(error, '');
  const body = credentials();
  const problem = missing(body);
  if (problem) {
    say(error, problem);
    if (!askingCode) (body.user_id ? passwordInput : userInput).focus();
    return;
  }
  await busy(button, async () => {
    try {
      await api('/acctapi/login', { method: 'POST', body });
      location.assign(safeNext(new URLSearchParams(location.search).get('next')));
    } catch (err) {
      if (err instanceof ApiError && err.code === 'totp_required') {
        showCodeStep();
        return;
      }
      if (askingCode && err instanceof ApiError && err.status === 401) {
        say(error, useRecovery
          ? 'That recovery code did not work. Each code works only once.'
          : 'That code did not work. Codes work once; wait for the next one and try again.');
        const input = useRecovery ? recoveryInput : totpInput;
        input.select();
        input.focus();
        return;
      }
      // Deliberately vague on 401: never say which of the two was wrong.
      const message = err instanceof ApiError && err.status === 401
        ? 'That user name and password do not match.'
        : err.message;
      say(error, message);
      if (!askingCode) {
        passwordInput.select();
        passwordInput.focus();
      }
    }
  });
});
