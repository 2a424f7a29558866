// "Your data": how much is stored (against the quota, if any), the export download,
// and importing an archive.
import { ApiError, api, redirectIfSignedOut } from '../api.js';
import { byId, plural } from '../dom.js';
import { uploadForm } from './upload-form.js';

/** Bytes for people: 1.2 MB, 340 KB. */
export function formatBytes(n) {
  if (!Number.isFinite(n) || n < 1000) return `${Math.max(0, Math.round(n || 0))} bytes`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** @param {{onImported: () => void}} hooks */
export function dataPanel({ onImported }) {
  const usage = byId('usage');

  async function refresh() {
    try {
      const u = await api('/acctapi/usage');
      const records = `${u.records.toLocaleString()} ${u.records === 1 ? 'record' : 'records'}`;
      const ofRecords = u.quota?.records ? ` of ${u.quota.records.toLocaleString()}` : '';
      const ofBytes = u.quota?.bytes ? ` of ${formatBytes(u.quota.bytes)}` : '';
      usage.textContent = `${records}${ofRecords} · ${formatBytes(u.bytes)}${ofBytes} stored`;
    } catch (err) {
      if (!redirectIfSignedOut(err)) usage.textContent = '';
    }
  }

  // A plain link would save the error reply as a file once the session has ended elsewhere.
  byId('export-link').addEventListener('click', async (event) => {
    event.preventDefault();
    try {
      const session = await api('/acctapi/session');
      if (!session.logged_in) throw new ApiError(401, {});
      location.assign('/acctapi/export');
    } catch (err) {
      if (!redirectIfSignedOut(err)) usage.textContent = `Could not start the download: ${err.message}`;
    }
  });

  uploadForm({
    prefix: 'import',
    url: '/acctapi/import',
    // The server checks the whole archive before it writes anything.
    working: (name) => `Checking and importing ${name}…`,
    done: (r) => {
      const written = r.records_written + r.files_written + (r.app_files_written ?? 0);
      const here = r.records_unchanged + r.files_unchanged + (r.app_files_unchanged ?? 0);
      const kept = r.records_kept_newer
        ? ` ${plural(r.records_kept_newer, 'record was kept as it is here: it was', 'records were kept as they are here: they were')} changed since the archive was made.`
        : '';
      if (written === 0) return { text: `Nothing new: everything in the archive was already here.${kept}` };
      return {
        text: `Imported: ${plural(r.records_written, 'record', 'records')} and ${plural(r.files_written, 'file', 'files')} written`
          + `${here ? `, ${plural(here, 'item', 'items')} already here` : ''}.${kept}`,
      };
    },
    failed: 'Nothing was imported',
    onDone: () => {
      refresh();
      onImported();
    },
  });

  return { refresh };
}
