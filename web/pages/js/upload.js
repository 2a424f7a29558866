// Uploads a file as multipart field `file` with XMLHttpRequest, because fetch()
// cannot report upload progress.
import { ApiError, parseBody } from './api.js';

/**
 * @param {string} url
 * @param {File} file
 * @param {(fraction: number) => void} onProgress  0..1
 * @returns {Promise<any>} the server's JSON reply; rejects with ApiError
 */
export function uploadFile(url, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
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
