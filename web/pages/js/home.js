// The owner's home page: wires the panels together once the session is known.
import { ApiError, api, redirectIfSignedOut, setSigningOut } from './api.js';
import { byId, say } from './dom.js';
import { appsPanel } from './home/apps.js';
import { installPanel } from './home/install.js';
import { appPasswordPanel } from './home/app-password.js';
import { usersPanel } from './home/users.js';
import { twoFactorPanel } from './home/twofactor.js';
import { permissionsPanel } from './home/permissions.js';
import { accessPanel } from './home/access.js';
import { dataPanel } from './home/data.js';
import { passwordPanel } from './home/password.js';

async function main() {
  let session;
  try {
    session = await api('/acctapi/session');
  } catch (err) {
    if (!redirectIfSignedOut(err)) say(byId('apps-error'), `Could not reach the server: ${err.message}`);
    return;
  }
  if (!session.logged_in) {
    location.replace('/signin?next=/home');
    return;
  }

  byId('whoami-name').textContent = session.user_id;
  byId('whoami').hidden = false;
  byId('signout').addEventListener('click', signOut);

  const access = accessPanel();
  const passwords = appPasswordPanel({ onMade: () => access.refresh() });
  const permissions = permissionsPanel();
  let data;
  const apps = appsPanel({
    onApps: (list) => {
      passwords.setApps(list);
      permissions.refresh(list);
    },
    onRemoved: () => {
      access.refresh();
      data.refresh();
    },
  });
  data = dataPanel({ onImported: () => apps.refresh() });
  installPanel({ onInstalled: () => { apps.refresh(); data.refresh(); } });
  twoFactorPanel().refresh();
  passwordPanel();
  if (session.is_admin) usersPanel(session.user_id).refresh();
  access.refresh();
  data.refresh();
  await apps.refresh();
}

async function signOut() {
  const button = byId('signout');
  button.disabled = true;
  setSigningOut(true);
  try {
    await api('/acctapi/logout', { method: 'POST' });
  } catch (err) {
    // Signed out already (another tab, an expired session): the sign-in page is right.
    // Otherwise the session may still be live, and on a shared computer that matters.
    if (!(err instanceof ApiError) || err.status !== 401) {
      setSigningOut(false);
      button.disabled = false;
      say(byId('apps-error'), `Could not sign you out (${err.message.replace(/[.\s]+$/, '')}). Try again.`);
      byId('apps-error').scrollIntoView({ block: 'center' });
      return;
    }
  }
  location.assign('/signin');
}

main();
