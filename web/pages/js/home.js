// The owner's home page: wires the panels together once the session is known.
import { api, redirectIfSignedOut } from './api.js';
import { byId, say } from './dom.js';
import { appsPanel } from './home/apps.js';
import { installPanel } from './home/install.js';
import { appPasswordPanel } from './home/app-password.js';
import { usersPanel } from './home/users.js';
import { twoFactorPanel } from './home/twofactor.js';

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

  const passwords = appPasswordPanel();
  const apps = appsPanel({ onApps: (list) => passwords.setApps(list) });
  installPanel({ onInstalled: () => apps.refresh() });
  twoFactorPanel().refresh();
  if (session.is_admin) usersPanel().refresh();
  await apps.refresh();
}

async function signOut() {
  try {
    await api('/acctapi/logout', { method: 'POST' });
  } finally {
    // Even if the call failed, the sign-in page is the right place to be.
    location.assign('/signin');
  }
}

main();
