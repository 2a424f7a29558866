// "Access from elsewhere": unused app passwords and the tokens of apps that run
// elsewhere, each with a revoke button. Page tokens (session-bound) are left out:
// they end when the owner signs out.
import { api, redirectIfSignedOut } from '../api.js';
import { byId, el, say, formatDate, formatDateTime, refocus } from '../dom.js';

const KINDS = { app_password: 'App password, not used yet', app: 'App access' };

export function accessPanel() {
  const list = byId('access-list');
  const empty = byId('access-empty');
  const error = byId('access-error');
  const count = byId('access-count');

  async function refresh() {
    try {
      const { tokens = [] } = await api('/acctapi/tokens');
      say(error, '');
      const shown = tokens.filter((t) => !t.session_bound);
      list.replaceChildren(...shown.map(row));
      empty.hidden = shown.length > 0;
      count.textContent = shown.length ? `${shown.length} active` : '';
    } catch (err) {
      if (!redirectIfSignedOut(err)) say(error, `Could not load who has access: ${err.message}`);
    }
  }

  function row(token) {
    const name = token.display_name || token.app_name;
    const revoke = el('button', { type: 'button', className: 'button small danger', 'aria-label': `Revoke ${KINDS[token.kind] ?? token.kind} of ${name}` }, 'Revoke');
    revoke.addEventListener('click', () => revokeToken(token, revoke));
    // Within two days the hour matters (a one-hour password): shown with its time.
    const soon = Number(token.expires_at) - Date.now() < 2 * 24 * 3600 * 1000;
    const when = [`made ${formatDate(token.created_at)}`, `expires ${soon ? formatDateTime(token.expires_at) : formatDate(token.expires_at)}`].join(' · ');
    return el('li', { 'data-token': token.id },
      el('span', { className: 'token-text' },
        token.display_name ? el('span', { className: 'app-name' }, token.display_name, ' ', el('span', { className: 'app-id' }, token.app_name)) : el('span', { className: 'app-id' }, token.app_name),
        el('span', { className: 'muted small' }, `${KINDS[token.kind] ?? token.kind} · ${when}`)),
      revoke);
  }

  async function revokeToken(token, button) {
    button.disabled = true;
    try {
      await api(`/acctapi/tokens/${encodeURIComponent(token.id)}`, { method: 'DELETE' });
    } catch (err) {
      button.disabled = false;
      // Already gone (used up, expired, revoked in another tab): the refresh shows it.
      if (redirectIfSignedOut(err)) return;
      if (err.status !== 404) {
        say(error, `Could not revoke it: ${err.message}`);
        return;
      }
    }
    await refresh();
    refocus(list, list.closest('section')?.querySelector('h2'));
  }

  return { refresh };
}
