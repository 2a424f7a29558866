// "Two-factor sign-in": set up an authenticator app (TOTP), see the recovery codes
// once, make new ones, or turn it off. The setup key and link are shown as text
// (no QR code), which every authenticator app accepts.
import { api, redirectIfSignedOut } from '../api.js';
import { byId, el, status, busy } from '../dom.js';

/** The base32 key in groups of four, easier to type into a phone. */
function grouped(secret) {
  return secret.match(/.{1,4}/g)?.join(' ') ?? secret;
}

export function twoFactorPanel() {
  const state = byId('twofactor-state');
  const summary = byId('twofactor-summary');
  const off = byId('twofactor-off');
  const enrol = byId('twofactor-enrol');
  const codesBox = byId('twofactor-codes');
  const codesList = byId('twofactor-codes-list');
  const on = byId('twofactor-on');
  const message = byId('twofactor-status');
  const secretOut = byId('twofactor-secret');
  const qrOut = byId('twofactor-qr');
  const uriOut = byId('twofactor-uri');
  const confirmCode = byId('twofactor-code');
  const regenCode = byId('twofactor-regen-code');
  const disablePassword = byId('twofactor-disable-password');
  const disableCode = byId('twofactor-disable-code');

  /** Shows one of the panel's views; the recovery codes stay up until dismissed. */
  function view(name) {
    off.hidden = name !== 'off';
    enrol.hidden = name !== 'enrol';
    codesBox.hidden = name !== 'codes';
    on.hidden = name !== 'on';
  }

  function failed(err, what) {
    if (!redirectIfSignedOut(err)) status(message, 'error', `${what}: ${err.message}`);
  }

  async function refresh() {
    try {
      show(await api('/acctapi/2fa'));
    } catch (err) {
      failed(err, 'Could not load two-factor settings');
    }
  }

  function show(s) {
    state.hidden = false;
    state.textContent = s.enabled ? 'On' : 'Off';
    state.classList.toggle('badge-off', !s.enabled);
    if (s.enabled) {
      const left = s.recovery_codes_left;
      summary.textContent = `Signing in asks for a code from your authenticator app. ${left} recovery code${left === 1 ? '' : 's'} left.`;
      view('on');
    } else {
      summary.textContent = 'Ask for a code from an authenticator app on your phone when you sign in, so a stolen password is not enough.';
      view('off');
    }
  }

  function showCodes(codes) {
    codesList.replaceChildren(...codes.map((c) => el('li', {}, el('code', {}, c))));
    view('codes');
  }

  byId('twofactor-setup').addEventListener('click', async (event) => {
    status(message, '', '');
    await busy(event.currentTarget, async () => {
      try {
        const { secret, otpauth_uri: uri, qr_svg: qr } = await api('/acctapi/2fa/setup', { method: 'POST' });
        // The server drew it (SVG text); shown as an image, so none of it runs as part of the page.
        qrOut.src = typeof qr === 'string' && qr.startsWith('<svg') ? `data:image/svg+xml;base64,${btoa(qr)}` : '';
        qrOut.hidden = !qrOut.src;
        secretOut.textContent = grouped(secret);
        secretOut.dataset.secret = secret;
        uriOut.textContent = uri;
        // A link, so the phone that holds the authenticator can open it with a tap.
        if (uri.startsWith('otpauth://')) uriOut.href = uri;
        confirmCode.value = '';
        byId('copy-twofactor-secret').textContent = 'Copy';
        view('enrol');
        confirmCode.focus();
      } catch (err) {
        failed(err, 'Could not start the set-up');
      }
    });
  });

  byId('twofactor-cancel').addEventListener('click', () => {
    // The pending secret stays unused on the server until the next set-up replaces it.
    status(message, '', '');
    secretOut.textContent = '';
    uriOut.textContent = '';
    uriOut.removeAttribute('href');
    qrOut.removeAttribute('src');
    view('off');
  });

  byId('twofactor-confirm-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const code = confirmCode.value.replace(/\s/g, '');
    if (!/^\d{6}$/.test(code)) {
      status(message, 'error', 'Enter the six digits your authenticator app shows.');
      confirmCode.focus();
      return;
    }
    await busy(byId('twofactor-confirm'), async () => {
      try {
        const reply = await api('/acctapi/2fa/confirm', { method: 'POST', body: { code } });
        secretOut.textContent = '';
        uriOut.textContent = '';
        uriOut.removeAttribute('href');
        qrOut.removeAttribute('src');
        state.textContent = 'On';
        state.classList.remove('badge-off');
        summary.textContent = 'Signing in now asks for a code from your authenticator app.';
        status(message, '', '');
        showCodes(reply.recovery_codes);
      } catch (err) {
        failed(err, 'Not turned on');
        confirmCode.select();
      }
    });
  });

  /** Copies text with a button, saying how it went on the button itself. */
  function copyButton(id, text) {
    const button = byId(id);
    button.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(text());
        button.textContent = 'Copied';
      } catch {
        // No clipboard access (plain http on another host): the text is selectable.
        button.textContent = 'Select and copy';
      }
    });
  }
  copyButton('copy-recovery-codes', () => [...codesList.querySelectorAll('code')].map((c) => c.textContent).join('\n'));
  copyButton('copy-twofactor-secret', () => secretOut.dataset.secret ?? '');

  byId('twofactor-codes-done').addEventListener('click', async () => {
    // Once dismissed they are gone from the page too: they are not shown again.
    codesList.replaceChildren();
    byId('copy-recovery-codes').textContent = 'Copy all';
    status(message, '', '');
    await refresh();
  });

  byId('twofactor-regen-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const code = regenCode.value.replace(/\s/g, '');
    if (!/^\d{6}$/.test(code)) {
      status(message, 'error', 'Enter the six digits your authenticator app shows.');
      regenCode.focus();
      return;
    }
    await busy(byId('twofactor-regen'), async () => {
      try {
        const reply = await api('/acctapi/2fa/recovery-codes', { method: 'POST', body: { code } });
        regenCode.value = '';
        status(message, 'success', 'New recovery codes made; the old ones no longer work.');
        showCodes(reply.recovery_codes);
      } catch (err) {
        failed(err, 'No new codes');
      }
    });
  });

  byId('twofactor-disable-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const password = disablePassword.value;
    const given = disableCode.value.trim();
    if (!password || !given) {
      status(message, 'error', 'Enter your password and a code from the app (or a recovery code).');
      return;
    }
    // Six digits is an app code; anything else is taken for a recovery code.
    const digits = given.replace(/\s/g, '');
    const body = /^\d{6}$/.test(digits) ? { password, code: digits } : { password, recovery_code: given };
    await busy(byId('twofactor-disable'), async () => {
      try {
        await api('/acctapi/2fa/disable', { method: 'POST', body });
        disablePassword.value = '';
        disableCode.value = '';
        status(message, 'success', 'Two-factor sign-in is off.');
        await refresh();
      } catch (err) {
        failed(err, 'Not turned off');
      }
    });
  });

  return { refresh };
}
