import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { Secret, TOTP } from 'otpauth';
import jsqr from 'jsqr';
import { startTestServer, TEST_PASSWORD, type TestServer } from '../helpers/server.js';
import { browserSkipReason, launchBrowser, type LaunchedBrowser, collectPageErrors } from '../helpers/browser.js';

// CommonJS whose types declare an ES default export: under Node's ESM interop the module itself is the function.
const jsQR = jsqr as unknown as (typeof jsqr)['default'];

/** Screenshots land here (git-ignored) for people to look at; tests don't compare them. */
const SHOTS = path.join('test-results', 'screenshots');
const USER = 'rosa';

let server: TestServer;
let launched: LaunchedBrowser | undefined;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];

/** What the person's authenticator app would show. */
function codeAt(secret: string, timestamp: number): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp });
}

async function signInWithPassword(): Promise<void> {
  await page.goto(`${server.url}/signin`);
  await page.fill('#user_id', USER);
  await page.fill('#password', TEST_PASSWORD);
  await page.click('#signin');
  await page.waitForSelector('#code-step:not([hidden])');
}

async function signOut(): Promise<void> {
  await page.click('#signout');
  await page.waitForURL(`${server.url}/signin`);
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await startTestServer({ listen: true });
  await server.addUser(USER, TEST_PASSWORD, true);
  if (browserSkipReason()) return;
  launched = await launchBrowser();
  context = await launched.browser.newContext({ viewport: { width: 1200, height: 900 } });
  page = await context.newPage();
  collectPageErrors(page, pageErrors);
});

after(async () => {
  await launched?.close();
  await server?.close();
});

describe('two-factor sign-in in a browser', { skip: browserSkipReason() }, () => {
  let secret = '';
  let confirmedAt = 0;
  let recoveryCodes: string[] = [];

  test('the home page enrols an authenticator app and shows the recovery codes once', async () => {
    await page.goto(`${server.url}/signin`);
    await page.fill('#user_id', USER);
    await page.fill('#password', TEST_PASSWORD);
    await page.click('#signin');
    await page.waitForURL(`${server.url}/home`);
    await page.waitForSelector('#twofactor-off:not([hidden])');
    assert.equal(await page.textContent('#twofactor-state'), 'Off');

    await page.click('#twofactor-setup');
    await page.waitForSelector('#twofactor-enrol:not([hidden])');
    secret = (await page.textContent('#twofactor-secret'))!.replace(/\s/g, '');
    assert.match(secret, /^[A-Z2-7]{32}$/);
    const uri = await page.textContent('#twofactor-uri');
    assert.match(uri ?? '', new RegExp(`^otpauth://totp/.*secret=${secret}`));
    assert.equal(await page.getAttribute('#twofactor-uri', 'href'), uri, 'the setup link is a link a phone can open');
    // The QR code a phone scans says the same link: read back from the pixels the browser drew.
    await page.waitForFunction(() => (document.querySelector('#twofactor-qr') as HTMLImageElement | null)?.complete === true);
    const pixels = await page.evaluate(() => {
      const img = document.querySelector('#twofactor-qr') as HTMLImageElement;
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth * 2;
      canvas.height = img.naturalHeight * 2;
      const g = canvas.getContext('2d')!;
      g.drawImage(img, 0, 0, canvas.width, canvas.height);
      return { width: canvas.width, height: canvas.height, data: Array.from(g.getImageData(0, 0, canvas.width, canvas.height).data) };
    });
    const scanned = jsQR(Uint8ClampedArray.from(pixels.data), pixels.width, pixels.height);
    assert.equal(scanned?.data, uri);
    await page.locator('#twofactor-panel').screenshot({ path: path.join(SHOTS, 'twofactor-setup.png') });

    await page.fill('#twofactor-code', '12345');
    await page.click('#twofactor-confirm');
    await page.waitForSelector('#twofactor-status.alert-error');
    assert.match(await page.textContent('#twofactor-status') ?? '', /six digits/);

    confirmedAt = Date.now();
    await page.fill('#twofactor-code', codeAt(secret, confirmedAt));
    await page.click('#twofactor-confirm');
    await page.waitForSelector('#twofactor-codes:not([hidden])');
    recoveryCodes = await page.locator('#twofactor-codes-list code').allTextContents();
    assert.equal(recoveryCodes.length, 10);
    assert.equal(await page.textContent('#twofactor-secret'), '', 'the key is gone from the page once confirmed');
    await page.locator('#twofactor-panel').screenshot({ path: path.join(SHOTS, 'twofactor-codes.png') });

    await page.click('#twofactor-codes-done');
    await page.waitForSelector('#twofactor-on:not([hidden])');
    assert.equal(await page.locator('#twofactor-codes-list li').count(), 0);
    assert.equal(await page.textContent('#twofactor-state'), 'On');
    assert.match(await page.textContent('#twofactor-summary') ?? '', /10 recovery codes left/);
    await page.locator('#twofactor-panel').screenshot({ path: path.join(SHOTS, 'twofactor-panel.png') });
    assert.equal((await server.services.twoFactor.status(USER)).enabled, true);
  });

  test('after signing out, sign-in asks for the code and takes it', async () => {
    await signOut();
    await signInWithPassword();
    assert.equal(await page.isVisible('#password'), false, 'the password step is put away');
    await page.screenshot({ path: path.join(SHOTS, 'signin-code.png'), fullPage: true });
    // A way back to the name and password, without reloading.
    await page.click('#other-account');
    await page.waitForSelector('#code-step', { state: 'hidden' });
    assert.equal(await page.isVisible('#password'), true);
    assert.equal(await page.inputValue('#password'), '', 'the password is not kept for someone else');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'user_id');
    assert.equal(await page.textContent('#signin'), 'Sign in');
    await page.fill('#password', TEST_PASSWORD);
    await page.click('#signin');
    await page.waitForSelector('#code-step:not([hidden])');

    const next = codeAt(secret, confirmedAt + 30_000);
    await page.fill('#totp', next === '000000' ? '111111' : '000000');
    await page.click('#signin');
    await page.waitForSelector('#signin-error:not([hidden])');
    assert.match(await page.textContent('#signin-error') ?? '', /code did not work/);

    await page.fill('#totp', next);
    await page.click('#signin');
    await page.waitForURL(`${server.url}/home`);
    await page.waitForSelector('#twofactor-on:not([hidden])');
  });

  test('a recovery code signs in through "use a recovery code", then turns 2FA off', async () => {
    await signOut();
    await signInWithPassword();
    await page.click('#use-recovery');
    await page.waitForSelector('#recovery-field:not([hidden])');
    assert.equal(await page.isVisible('#totp'), false);
    await page.fill('#recovery_code', recoveryCodes[0]!);
    await page.click('#signin');
    await page.waitForURL(`${server.url}/home`);
    await page.waitForSelector('#twofactor-on:not([hidden])');
    assert.match(await page.textContent('#twofactor-summary') ?? '', /9 recovery codes left/);

    await page.fill('#twofactor-disable-password', TEST_PASSWORD);
    await page.fill('#twofactor-disable-code', recoveryCodes[1]!);
    await page.click('#twofactor-disable');
    await page.waitForSelector('#twofactor-off:not([hidden])');
    assert.equal(await page.textContent('#twofactor-state'), 'Off');
    assert.equal((await server.services.twoFactor.status(USER)).enabled, false);
  });

  test('the pages logged no errors (CSP violations included)', () => {
    assert.deepEqual(pageErrors, []);
  });
});
