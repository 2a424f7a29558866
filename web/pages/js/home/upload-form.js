// A form that uploads one chosen file with a progress bar and reports the outcome:
// the app install and the data import both work this way.
import { redirectIfSignedOut } from '../api.js';
import { byId, status } from '../dom.js';
import { uploadFile } from '../upload.js';

/**
 * @param {{
 *   prefix: string,                 // element ids: <prefix>-form, -file, -button, -progress, -status
 *   url: string,
 *   working: (name: string) => string,   // said once the bytes are sent and the server works on them
 *   done: (reply: any) => {text: string, items?: string[], tone?: 'success' | 'warning'},
 *   failed: string,                 // what a refusal's message is prefixed with
 *   onDone?: () => void,
 * }} spec
 */
export function uploadForm({ prefix, url, working, done, failed, onDone }) {
  const form = byId(`${prefix}-form`);
  const input = byId(`${prefix}-file`);
  const button = byId(`${prefix}-button`);
  const progress = byId(`${prefix}-progress`);
  const message = byId(`${prefix}-status`);

  const canSend = () => (button.disabled = input.files.length === 0);
  input.addEventListener('change', () => {
    canSend();
    status(message, '', '');
  });
  // A file chosen while the page was still loading (before the listener above) counts too.
  canSend();

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
      const reply = await uploadFile(url, file, (fraction) => {
        progress.value = Math.round(fraction * 100);
        if (fraction >= 1) status(message, 'info', working(file.name));
      });
      const { text, items = [], tone = 'success' } = done(reply);
      status(message, tone, text, items);
      form.reset();
      onDone?.();
    } catch (err) {
      if (redirectIfSignedOut(err)) return;
      status(message, 'error', `${failed}: ${err.message}`, err.details);
    } finally {
      progress.hidden = true;
      input.disabled = false;
      canSend();
    }
  });
}
