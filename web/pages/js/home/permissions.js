// "Permissions apps ask for": each installed app's declared permissions, with
// whether the owner allowed it and a button to allow or take it back
// (PUT /feps/permissions/change, freezr's own call for this).
import { api, redirectIfSignedOut } from '../api.js';
import { byId, el, say } from '../dom.js';

/** What each permission type lets an app do, in words. */
const TYPES = {
  share_records: 'share records you choose with others',
  message_records: 'send records to people as messages',
  read_all: 'read every record of these tables',
  write_own: 'add records to these tables, and change or delete the ones it added',
  write_all: 'read, add, change and delete any record of these tables',
  upload_pages: 'publish pages',
  external_fetch: 'send and receive data from',
  external_scripts: 'run scripts from',
};

/**
 * Types whose features (sharing between people, messages, publishing) this server does
 * not offer yet: allowing one is kept, and says so, but changes nothing for now.
 */
const NOT_YET = new Set(['share_records', 'message_records', 'upload_pages']);

/** Types that reach other sites (their hosts matter, not tables). */
const REACHES_OUT = new Set(['external_fetch', 'external_scripts']);

export function permissionsPanel() {
  const panel = byId('permissions-panel');
  const list = byId('permissions-list');
  const error = byId('permissions-error');

  /** @param {object[]} apps  the installed apps, as /acctapi/apps lists them */
  async function refresh(apps) {
    try {
      const asked = await Promise.all(apps.map(async (app) => ({ app, ...(await api(`/acctapi/apps/${encodeURIComponent(app.app_name)}/permissions`)) })));
      const withAny = asked.filter((a) => a.permissions.length > 0);
      say(error, '');
      list.replaceChildren(...withAny.map(({ app, permissions }) => group(app, permissions, apps)));
      panel.hidden = withAny.length === 0;
    } catch (err) {
      if (redirectIfSignedOut(err)) return;
      panel.hidden = false;
      say(error, `Could not load the permissions: ${err.message}`);
    }
  }

  function group(app, permissions, apps) {
    const name = app.display_name || app.app_name;
    return el('div', { className: 'perm-group', 'data-app': app.app_name },
      el('h3', {}, name, ' ', el('span', { className: 'app-id' }, app.app_name)),
      el('ul', { className: 'perm-list' }, ...permissions.map((p) => row(app, p, apps))));
  }

  function row(app, p, apps) {
    const hosts = Array.isArray(p.hosts) ? p.hosts : [];
    const tables = REACHES_OUT.has(p.type) || !Array.isArray(p.table_id) ? [] : p.table_id;
    const verb = TYPES[p.type] ?? `use the "${p.type}" permission`;
    const what = REACHES_OUT.has(p.type) ? `Lets it ${verb} ${hosts.join(', ') || 'other sites'}` : `Lets it ${verb}`;
    const badge = el('span', { className: p.granted ? 'badge badge-on' : 'badge' }, p.granted ? 'Allowed' : 'Not allowed');
    const toggle = el('button', {
      type: 'button', className: p.granted ? 'button small' : 'button small primary',
      'aria-label': `${p.granted ? 'Take back' : 'Allow'} ${p.name} for ${app.display_name || app.app_name}`,
    }, p.granted ? 'Take back' : 'Allow');
    toggle.addEventListener('click', () => change(app, p, toggle, apps));
    return el('li', { 'data-permission': p.name },
      el('span', { className: 'perm-text' },
        el('strong', {}, p.name),
        p.description ? el('span', {}, p.description) : null,
        el('span', { className: 'muted small' }, [what, tables.length ? `tables: ${tables.join(', ')}` : ''].filter(Boolean).join(' · ')),
        NOT_YET.has(p.type) ? el('span', { className: 'muted small perm-not-yet' }, 'This server does not offer this yet: allowing it has no effect for now.') : null),
      badge, toggle);
  }

  async function change(app, p, button, apps) {
    button.disabled = true;
    try {
      await api('/feps/permissions/change', {
        method: 'PUT',
        body: { change: { name: p.name, requestor_app: app.app_name, table_id: p.table_id ?? null, action: p.granted ? 'Deny' : 'Accept' }, targetApp: app.app_name },
      });
      await refresh(apps);
      // The list was drawn again: keep the keyboard where it was, on this permission's button.
      list.querySelector(`[data-app="${CSS.escape(app.app_name)}"] li[data-permission="${CSS.escape(p.name)}"] button`)?.focus();
    } catch (err) {
      button.disabled = false;
      if (!redirectIfSignedOut(err)) say(error, `Could not change ${p.name}: ${err.message}`);
    }
  }

  return { refresh };
}
