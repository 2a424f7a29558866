// "App password": makes a one-time password an app running elsewhere trades for
// a token at /oauth/token. It is shown once, so it gets a copy button.
import { api, redirectIfSignedOut } from '../api.js';
import { byId, el, say, busy, formatDateTime } from '../dom.js';

/** @param {{onMade?: () => void}} [hooks]  told when a password was made */
export function appPasswordPanel({ onMade } = {}) {
  const form = byId('app-password-form');
  const appInput = byId('app-password-app');
  const suggestions = byId('app-password-apps');
  const expiry = byId('app-password-expiry');
  const button = byId('generate-app-password');
  const error = byId('app-password-status');
  const result = byId('app-password-result');
  const value = byId('app-password-value');
  const copy = byId('copy-app-password');
  const elsewhere = byId('app-password-elsewhere');
  /** The installed apps' names: a password for another name is for an app running elsewhere (or a typo). */
  let installed = new Set();

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    say(error, '');
    result.hidden = true;
    const appName = appInput.value.trim();
    if (!appName) {
      say(error, 'Choose the app the password is for.');
      appInput.focus();
      return;
    }
    const expiresAt = Date.now() + Number(expiry.value);
    const query = new URLSearchParams({ app_name: appName, expiry: String(expiresAt) });
    await busy(button, async () => {
      try {
        const reply = await api(`/acctapi/generateAppPassword?${query}`);
        show(reply.app_name || appName, reply.app_password, Number(reply.expiry) || expiresAt);
        onMade?.();
      } catch (err) {
        if (!redirectIfSignedOut(err)) say(error, err.message);
      }
    });
  });

  function show(appName, password, expiresAt) {
    byId('app-password-for').textContent = appName;
    byId('app-password-expires').textContent = formatDateTime(expiresAt);
    elsewhere.hidden = installed.has(appName);
    value.textContent = password;
    copy.textContent = 'Copy';
    result.hidden = false;
  }

  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(value.textContent);
      copy.textContent = 'Copied';
    } catch {
      // No clipboard access (e.g. plain http on another host): select it for Ctrl+C.
      const range = document.createRange();
      range.selectNodeContents(value);
      const selection = getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      copy.textContent = 'Press Ctrl+C';
    }
  });

  return {
    /** Offers the installed apps as suggestions; any app name may still be typed. */
    setApps(apps) {
      installed = new Set(apps.map((a) => a.app_name));
      suggestions.replaceChildren(...apps.map((a) => el('option', { value: a.app_name, label: a.display_name || a.app_name })));
    },
  };
}
