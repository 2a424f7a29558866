// The owner's answer to an app asking for a token (OAuth 2 authorization code with
// PKCE). The request is whatever this page's address carries; the server checks it
// and says what to show, and after Allow or Deny, where the browser goes next.
import { api } from './api.js';
import { byId, say } from './dom.js';

const request = Object.fromEntries(new URLSearchParams(location.search));
const loading = byId('authorize-loading');
const ask = byId('authorize-ask');
const error = byId('authorize-error');
const allow = byId('authorize-allow');
const deny = byId('authorize-deny');

async function answer(approve) {
  allow.disabled = true;
  deny.disabled = true;
  say(error, '');
  try {
    const { redirect } = await api('/oauth/authorize', { method: 'POST', body: { ...request, approve } });
    location.assign(redirect);
  } catch (err) {
    say(error, err.message);
    allow.disabled = false;
    deny.disabled = false;
  }
}

async function show() {
  try {
    const shown = await api('/oauth/authorize', { method: 'POST', body: request });
    // The name people know, beside the id the request gave (which is what is granted).
    byId('authorize-app').textContent = shown.display_name ? `${shown.display_name} (${shown.app_name})` : shown.app_name;
    byId('authorize-to').textContent = shown.redirect_to;
    ask.hidden = false;
    allow.addEventListener('click', () => void answer(true));
    deny.addEventListener('click', () => void answer(false));
    deny.focus();
  } catch (err) {
    // A request the server refuses is never sent back to its redirect address, which is not trusted yet.
    say(error, `This request cannot be answered: ${err.message}`);
  } finally {
    loading.hidden = true;
  }
}

void show();
