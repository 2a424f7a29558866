// "Install an app": uploads a zip with XMLHttpRequest, because fetch() cannot
// report upload progress, and shows why a package was refused.
import { ApiError, parseBody, redirectIfSignedOut } from '../api.js';
import { byId, status } from '../dom.js';

/**
 * Posts the file as multipart field `file`, reporting progress as 0..1.
 * @returns {Promise<object>} the server's JSON reply; rejects with ApiError
 */
function upload(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/acctapi/apps/install');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.upload.addEventListener('load', () => onProgress(1));
    xhr.addEventListener('load', () => {
      const body = parseBody(xhr.responseText);
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, {})));
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
}

/** @param {{onInstalled: () => void}} hooks */
export function installPanel({ onInstalled }) {
  const form = byId('install-form');
  const input = byId('install-file');
  const button = byId('install-button');
  const progress = byId('install-progress');
  const message = byId('install-status');

  input.addEventListener('change', () => {
    button.disabled = input.files.length === 0;
    status(message, '', '');
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const file = input.files[0];
    if (!file) return;
    button.disabled = true;
    input.disabled = true;
    progress.value = 0;
    progress.hidden = false;
    status(message, 'info', `Uploading ${file.name}…`);
    try {
      const result = await upload(file, (fraction) => {
        progress.value = Math.round(fraction * 100);
        // Once the bytes are sent the server unpacks and checks the package.
        if (fraction >= 1) status(message, 'info', `Installing ${file.name}…`);
      });
      const verb = result.updated ? 'Updated' : 'Installed';
      const warnings = Array.isArray(result.warnings) ? result.warnings : [];
      status(message, 'success', `${verb} ${result.app_name}${result.version ? ` ${result.version}` : ''}.${warnings.length ? ' Left out of it:' : ''}`, warnings);
      form.reset();
      onInstalled();
    } catch (err) {
      if (redirectIfSignedOut(err)) return;
      status(message, 'error', `Not installed: ${err.message}`, err.details);
    } finally {
      progress.hidden = true;
      input.disabled = false;
      button.disabled = input.files.length === 0;
    }
  });
}
