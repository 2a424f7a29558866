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
      const name = `${result.app_name}${result.version ? ` ${result.version}` : ''}`;
      const warnings = Array.isArray(result.warnings) ? result.warnings : [];
      const toDecide = Array.isArray(result.to_decide) ? result.to_decide : [];
      const lapsed = Array.isArray(result.lapsed) ? result.lapsed : [];
      // New permissions, and granted ones an update changed (they must be allowed again).
      const decide = (toDecide.length
        ? ` ${toDecide.length === 1 ? 'One permission waits' : `${toDecide.length} permissions wait`} for your decision under "Permissions apps ask for": ${toDecide.join(', ')}.`
        : '') + (lapsed.length
        ? ` ${lapsed.join(', ')} ${lapsed.length === 1 ? 'was' : 'were'} allowed before; this version changed what ${lapsed.length === 1 ? 'it asks' : 'they ask'} for, so ${lapsed.length === 1 ? 'it is' : 'they are'} off until you allow ${lapsed.length === 1 ? 'it' : 'them'} again.`
        : '');
      if (warnings.length === 0) return { text: `${verb} ${name}.${decide}` };
      return {
        tone: 'warning',
        text: `${verb} ${name}, without some things its manifest asks for; it may not work fully.${decide} Left out of it:`,
        items: warnings,
      };
    },
    failed: 'Not installed',
    onDone: onInstalled,
  });
}
