// "Your apps": the installed apps as cards linking to their pages, each with a
// remove button; below them, the data apps that are not installed left here, each
// with a button to delete it.
import { api, redirectIfSignedOut } from '../api.js';
import { byId, el, say, formatDate, plural, refocus } from '../dom.js';

const HUES = 8;

/** A stable icon colour per app, so each keeps its look between visits. */
function hueOf(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % HUES;
}

/** The letter on an app's icon: the first letter of its display name. */
function initialOf(app) {
  const name = app.display_name || app.app_name.split('.').pop() || '?';
  return [...name][0].toUpperCase();
}

/**
 * Asks how to remove an app: keep its data, delete it, or not remove it at all
 * (Cancel, Escape). Resolves to 'keep', 'delete' or 'cancel'.
 */
function askRemoval(app, name) {
  const dialog = byId('remove-dialog');
  byId('remove-name').textContent = name;
  byId('remove-id').textContent = app.app_name;
  dialog.returnValue = 'cancel';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue || 'cancel'), { once: true });
    dialog.showModal();
  });
}

/**
 * @param {{onApps: (apps: object[]) => void, onRemoved?: () => void}} hooks  told the list
 *   after each load; told when an app was removed (its tokens went with it)
 */
export function appsPanel({ onApps, onRemoved }) {
  const list = byId('apps-list');
  const empty = byId('apps-empty');
  const error = byId('apps-error');
  const count = byId('apps-count');

  const kept = byId('kept');
  const keptList = byId('kept-list');

  async function refresh() {
    try {
      const [{ apps = [] }, { apps: left = [] }] = await Promise.all([api('/acctapi/apps'), api('/acctapi/kept-data')]);
      say(error, '');
      render(apps);
      renderKept(left);
      onApps(apps);
    } catch (err) {
      if (!redirectIfSignedOut(err)) say(error, `Could not load your apps: ${err.message}`);
    }
  }

  function renderKept(left) {
    keptList.replaceChildren(...left.map(keptRow));
    kept.hidden = left.length === 0;
  }

  function keptRow(entry) {
    // File records are counted among the records; people think of them as files.
    const files = Number(entry.files) || 0;
    const records = entry.records - files;
    const what = files ? `${plural(records, 'record', 'records')} and ${plural(files, 'file', 'files')}` : plural(records, 'record', 'records');
    const del = el('button', { type: 'button', className: 'button small danger', 'aria-label': `Delete the data of ${entry.app_name}` }, 'Delete data');
    del.addEventListener('click', () => deleteKept(entry, what, del));
    return el('li', { 'data-kept': entry.app_name },
      el('span', { className: 'app-id' }, entry.app_name),
      el('span', { className: 'muted small' }, what),
      del);
  }

  async function deleteKept(entry, what, button) {
    if (!confirm(`Delete the data ${entry.app_name} left here (${what})? This cannot be undone.`)) return;
    button.disabled = true;
    try {
      await api(`/acctapi/kept-data/${encodeURIComponent(entry.app_name)}`, { method: 'DELETE' });
      await refresh();
      refocus(keptList, keptList.closest('section')?.querySelector('h2'));
    } catch (err) {
      button.disabled = false;
      if (!redirectIfSignedOut(err)) say(error, `Could not delete the data of ${entry.app_name}: ${err.message}`);
    }
  }

  function render(apps) {
    const sorted = [...apps].sort((a, b) => (a.display_name || a.app_name).localeCompare(b.display_name || b.app_name));
    list.replaceChildren(...sorted.map(card));
    empty.hidden = sorted.length > 0;
    count.textContent = sorted.length ? `${sorted.length} installed` : '';
  }

  function card(app) {
    const name = app.display_name || app.app_name;
    const updated = formatDate(app.updated_at || app.installed_at);
    const remove = el('button', { type: 'button', className: 'button small danger', 'aria-label': `Remove ${name} (${app.app_name})` }, 'Remove');
    remove.addEventListener('click', () => removeApp(app, name, remove));
    return el('li', { className: 'app-card', 'data-app': app.app_name },
      el('a', { className: 'app-link', href: `/apps/${encodeURIComponent(app.app_name)}` },
        el('span', { className: `app-icon hue-${hueOf(app.app_name)}`, 'aria-hidden': 'true' }, initialOf(app)),
        el('span', { className: 'app-text' },
          el('span', { className: 'app-name' }, name),
          el('span', { className: 'app-id' }, app.app_name),
          el('span', { className: 'app-meta' }, [app.version && `v${app.version}`, updated && `updated ${updated}`].filter(Boolean).join(' · ')))),
      el('div', { className: 'app-actions' }, remove));
  }

  async function removeApp(app, name, button) {
    const choice = await askRemoval(app, name);
    if (choice !== 'keep' && choice !== 'delete') return;
    button.disabled = true;
    try {
      await api(`/acctapi/apps/${encodeURIComponent(app.app_name)}${choice === 'delete' ? '?delete_data=true' : ''}`, { method: 'DELETE' });
      onRemoved?.();
      await refresh();
      refocus(list, list.closest('section')?.querySelector('h2'));
    } catch (err) {
      button.disabled = false;
      if (!redirectIfSignedOut(err)) say(error, `Could not remove ${name}: ${err.message}`);
    }
  }

  return { refresh };
}
