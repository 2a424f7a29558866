// "Install an app": uploads a package, with progress, and shows why one was refused.
import { uploadForm } from './upload-form.js';

/** @param {{onInstalled: () => void}} hooks */
export function installPanel({ onInstalled }) {
  uploadForm({
    prefix: 'install',
    url: '/acctapi/apps/install',
    // Once the bytes are sent the server unpacks and checks the package.
    working: (name) => `Installing ${name}…`,
    done: (result) => {
      const verb = result.updated ? 'Updated' : 'Installed';
      const warnings = Array.isArray(result.warnings) ? result.warnings : [];
      return { text: `${verb} ${result.app_name}${result.version ? ` ${result.version}` : ''}.${warnings.length ? ' Left out of it:' : ''}`, items: warnings };
    },
    failed: 'Not installed',
    onDone: onInstalled,
  });
}
