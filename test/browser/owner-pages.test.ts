import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Secret, TOTP } from 'otpauth';
import { startTestServer, TEST_PASSWORD, type TestServer } from '../helpers/server.js';
import { browserSkipReason, launchBrowser, type LaunchedBrowser, collectPageErrors } from '../helpers/browser.js';

/** Screenshots land here (git-ignored) for people to look at; tests don't compare them. */
const SHOTS = path.join('test-results', 'screenshots');
const ADMIN = 'alice';

let server: TestServer;
let launched: LaunchedBrowser | undefined;
let browser: Browser;
let context: BrowserContext;
let page: Page;
/** Anything the page logged as an error, CSP violations included: the pages must produce none. */
const pageErrors: string[] = [];

/** GET with the path sent byte for byte: inject() and fetch() would resolve `..` first, as browsers do. */
function rawGet(rawPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}/`, { path: rawPath }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await startTestServer({ listen: true });
  if (browserSkipReason()) return;
  launched = await launchBrowser();
  browser = launched.browser;
  context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  page = await context.newPage();
  collectPageErrors(page, pageErrors);
});

after(async () => {
  await launched?.close();
  await server?.close();
});

describe('web routes', () => {
  test('a fresh server sends visitors to setup', async () => {
    const res = await server.app.inject({ url: '/' });
    assert.equal(res.statusCode, 302);
    assert.equal(res.headers.location, '/setup');
    const signin = await server.app.inject({ url: '/signin' });
    assert.equal(signin.headers.location, '/setup', 'no one can sign in before setup');
  });

  test('setup without a valid token explains where the link is', async () => {
    const missing = await server.app.inject({ url: '/setup' });
    assert.equal(missing.statusCode, 200);
    assert.match(missing.body, /setup link/);
    assert.doesNotMatch(missing.body, /id="create"/);
    const wrong = await server.app.inject({ url: '/setup?token=not-the-token' });
    assert.equal(wrong.statusCode, 403);
    assert.doesNotMatch(wrong.body, /id="create"/);
    assert.match(wrong.body, /This setup link does not work/, 'a wrong link is told apart from no link');
  });

  test('on a phone, the setup page\'s shell command is whole (the password piped in) and wraps only between words', { skip: browserSkipReason() }, async () => {
    const phone = await context.newPage();
    try {
      await phone.setViewportSize({ width: 390, height: 844 });
      await phone.goto(`${server.url}/setup?token=not-the-token`);
      const command = phone.locator('code.command');
      assert.equal(await command.textContent(), 'echo "<password>" | npx freehold user add <user-id> --password-stdin --admin');
      const linesOfFlag = await command.evaluate((code) => {
        const text = code.firstChild!;
        const at = text.textContent!.indexOf('--password-stdin');
        const range = document.createRange();
        range.setStart(text, at);
        range.setEnd(text, at + '--password-stdin'.length);
        return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
      });
      assert.equal(linesOfFlag, 1, '--password-stdin is not broken across lines');
      assert.equal(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'no sideways scrolling');
    } finally {
      await phone.close();
    }
  });

  test('pages carry the strict CSP and are not cached', async () => {
    const token = await server.services.accounts.issueSetupToken();
    const res = await server.app.inject({ url: `/setup?token=${token}` });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /script-src 'self';/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.doesNotMatch(res.body, /<script>|\son[a-z]+=/i, 'no inline scripts or handlers');
  });

  test('assets have content types and ETags, and answer 304', async () => {
    const css = await server.app.inject({ url: '/pages/style.css' });
    assert.equal(css.statusCode, 200);
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    const etag = String(css.headers.etag);
    assert.ok(etag.length > 4);
    const again = await server.app.inject({ url: '/pages/style.css', headers: { 'if-none-match': etag } });
    assert.equal(again.statusCode, 304);
    assert.equal(again.body, '');
    const js = await server.app.inject({ url: '/pages/js/home.js' });
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    const head = await server.app.inject({ method: 'HEAD', url: '/pages/icon.svg' });
    assert.equal(head.statusCode, 200);
    assert.equal(head.headers['content-type'], 'image/svg+xml');
  });

  test('no listings, no traversal, no pages through the asset route', async () => {
    for (const url of [
      '/pages/', '/pages/js', '/pages/js/', '/pages/../package.json', '/pages/%2e%2e/%2e%2e/package.json',
      '/pages/js/..%2f..%2f..%2fpackage.json', '/pages/..%5c..%5cpackage.json', '/lib/', '/lib/../pages/style.css',
      '/lib/%2e%2e/pages/style.css', '/pages/home.html', '/pages/.hidden', '/pages/style.css%00.js',
    ]) {
      const res = await rawGet(url);
      assert.equal(res.status, 404, url);
      assert.doesNotMatch(res.body, /"name": "freehold"/, url);
    }
  });

  test('home needs a session', async () => {
    const res = await server.app.inject({ url: '/home' });
    assert.equal(res.statusCode, 302);
    assert.equal(res.headers.location, '/signin?next=%2Fhome');
  });

  test('favicon is quiet', async () => {
    const res = await server.app.inject({ url: '/favicon.ico' });
    assert.equal(res.statusCode, 204);
  });
});

/** The home page names the signed-in user once its session request has answered; the URL changes before that. */
async function whoamiFilled(): Promise<void> {
  await page.waitForFunction(() => (document.querySelector('#whoami-name')?.textContent ?? '') !== '');
}

describe('owner pages in a browser', { skip: browserSkipReason() }, () => {
  test('setup creates the admin and lands on home', async () => {
    const token = await server.services.accounts.issueSetupToken();
    assert.ok(token);
    await page.goto(`${server.url}/setup?token=${token}`);
    await shot('setup');
    await page.fill('#user_id', ADMIN);
    await page.fill('#password', TEST_PASSWORD);
    await page.fill('#password2', 'something else');
    await page.click('#create');
    await page.waitForSelector('#setup-error:not([hidden])');
    assert.match(await page.textContent('#setup-error') ?? '', /differ/);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'password2', 'the keyboard is taken to the field to mend');

    await page.fill('#password2', TEST_PASSWORD);
    await page.click('#create');
    await page.waitForURL(`${server.url}/home`);
    await whoamiFilled();
    assert.equal(await page.textContent('#whoami-name'), ADMIN);
    await page.waitForSelector('#users-panel:not([hidden])');
    await page.waitForSelector(`#users-list li[data-user="${ADMIN}"]`);
    assert.equal(await server.services.accounts.hasAdmin(), true);
  });

  test('the spent setup link now sends people to sign in', async () => {
    const res = await server.app.inject({ url: '/setup?token=anything' });
    assert.equal(res.statusCode, 302);
    assert.equal(res.headers.location, '/signin');
  });

  test('sign-out ends the session', async () => {
    await page.click('#signout');
    await page.waitForURL(`${server.url}/signin`);
    await page.goto(`${server.url}/home`);
    await page.waitForURL(`${server.url}/signin?next=%2Fhome`);
    await shot('signin');
  });

  test('a wrong password shows an error and stays on sign-in', async () => {
    await page.fill('#user_id', ADMIN);
    await page.fill('#password', 'not the password');
    await page.click('#signin');
    await page.waitForSelector('#signin-error:not([hidden])');
    assert.match(await page.textContent('#signin-error') ?? '', /do not match/);
    assert.match(page.url(), /\/signin/);
    await shot('signin-error');
  });

  test('signing in goes to home', async () => {
    await page.fill('#password', TEST_PASSWORD);
    await page.click('#signin');
    await page.waitForURL(`${server.url}/home`);
    await whoamiFilled();
    assert.equal(await page.textContent('#whoami-name'), ADMIN);
    await page.waitForSelector('#apps-empty:not([hidden])');
  });

  test('the admin adds a user', async () => {
    await page.fill('#new-user-id', 'bob');
    await page.fill('#new-user-password', 'bobs long password');
    await page.click('#add-user');
    await page.waitForSelector('#users-list li[data-user="bob"]');
    assert.match(await page.textContent('#users-status') ?? '', /Added bob/);
    assert.ok(await server.services.accounts.verify('bob', 'bobs long password'));
  });

  test('an app password is shown once, with a copy button', async () => {
    await page.fill('#app-password-app', 'com.example.notes');
    await page.selectOption('#app-password-expiry', '3600000');
    await page.click('#generate-app-password');
    await page.waitForSelector('#app-password-result:not([hidden])');
    // The notes app is not installed yet: the page says the password is for an app running elsewhere.
    assert.equal(await page.isVisible('#app-password-elsewhere'), true);
    const value = (await page.textContent('#app-password-value')) ?? '';
    assert.ok(value.length >= 16, 'a real password is shown');
    await shot('home');
  });

  test('the app password is listed under access from elsewhere, and revoking it ends it', async () => {
    const row = '#access-list li';
    await page.waitForSelector(row);
    assert.match(await page.textContent(row) ?? '', /com\.example\.notes.*App password, not used yet/s);
    assert.match(await page.textContent(row) ?? '', /expires [^·]*\d:\d\d/, 'an hour-long password says at what time it ends');
    const password = (await page.textContent('#app-password-value')) ?? '';
    // By keyboard: once the row is gone, the focus is on the panel, not lost to the page.
    await page.focus(`${row} button`);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#access-empty:not([hidden])');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'access-heading');
    const traded = await server.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'password', username: ADMIN, password, client_id: 'com.example.notes' } });
    assert.equal(traded.statusCode, 400, 'a revoked app password buys nothing');
    assert.equal(traded.json().error, 'invalid_grant');

    // An app's access bought with a password shows too, and revoking it stops its token at once.
    const made = await server.app.inject({ url: '/acctapi/generateAppPassword?app_name=com.example.notes', headers: { cookie: await server.signIn(ADMIN) } });
    const token = (await server.app.inject({
      method: 'POST', url: '/oauth/token', payload: { grant_type: 'password', username: ADMIN, password: made.json().app_password, client_id: 'com.example.notes' },
    })).json().access_token as string;
    const auth = { authorization: `Bearer ${token}` };
    assert.equal((await server.app.inject({ url: '/ceps/query/com.example.notes', headers: auth })).statusCode, 200);
    await page.reload();
    await page.waitForSelector(row);
    assert.match(await page.textContent(row) ?? '', /App access/);
    await shot('home-access');
    await page.click(`${row} button`);
    await page.waitForSelector('#access-empty:not([hidden])');
    assert.equal((await server.app.inject({ url: '/ceps/query/com.example.notes', headers: auth })).statusCode, 401);
  });

  test('the owner allows and takes back what an app asks for on the home page', async () => {
    await server.services.apps.install(ADMIN, { folder: path.join('test', 'fixtures', 'apps', 'com.example.notes') });
    await page.reload();
    const row = '#permissions-list [data-app="com.example.notes"] li[data-permission="publish_posts"]';
    await page.waitForSelector(row);
    assert.match(await page.textContent(row) ?? '', /publish_posts.*Share posts with friends.*com\.example\.notes\.posts.*does not offer this yet.*Not allowed/s);
    assert.equal(await server.services.permissions.isGranted(ADMIN, 'com.example.notes', 'publish_posts'), false);
    // By keyboard: the focus stays on the permission's button once the list is drawn again.
    await page.focus(`${row} button`);
    await page.keyboard.press('Enter');
    await page.waitForFunction((sel) => /Allowed/.test(document.querySelector(sel)?.textContent ?? '') && !/Not allowed/.test(document.querySelector(sel)?.textContent ?? ''), row);
    assert.equal(await server.services.permissions.isGranted(ADMIN, 'com.example.notes', 'publish_posts'), true);
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Take back');
    await page.locator('#permissions-panel').screenshot({ path: path.join(SHOTS, 'home-permissions.png') });
    await page.click(`${row} button`);
    await page.waitForFunction((sel) => /Not allowed/.test(document.querySelector(sel)?.textContent ?? ''), row);
    assert.equal(await server.services.permissions.isGranted(ADMIN, 'com.example.notes', 'publish_posts'), false);

    // Now installed: a password for it carries no "running elsewhere" note.
    await page.fill('#app-password-app', 'com.example.notes');
    await page.click('#generate-app-password');
    await page.waitForSelector('#app-password-result:not([hidden])');
    assert.equal(await page.isVisible('#app-password-elsewhere'), false);
  });

  test('removing an app takes its access from elsewhere off the list at once', async () => {
    const made = await server.app.inject({ url: '/acctapi/generateAppPassword?app_name=com.example.notes', headers: { cookie: await server.signIn(ADMIN) } });
    assert.equal(made.statusCode, 200);
    await page.reload();
    await page.waitForSelector('#access-list li');
    await page.click('#apps-list li[data-app="com.example.notes"] button');
    await page.click('#remove-dialog button[value="keep"]');
    await page.waitForSelector('#apps-list li[data-app="com.example.notes"]', { state: 'detached' });
    await page.waitForSelector('#access-empty:not([hidden])');
  });

  test('the owner downloads everything and imports it back from the home page', async () => {
    const records = server.services.stores.records(ADMIN);
    await records.put(ADMIN, 'com.example.notes', { _id: 'kept-note', _date_created: 1, _date_modified: 2, title: 'round trip' });
    await page.reload();
    await page.waitForFunction(() => /record/.test(document.querySelector('#usage')?.textContent ?? ''));
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-link')]);
    const saved = path.join(SHOTS, '..', 'export-from-home.zip');
    await download.saveAs(saved);
    assert.match(download.suggestedFilename(), /^freehold-export-alice-.*\.zip$/);

    await records.delete(ADMIN, 'com.example.notes', 'kept-note');
    await page.setInputFiles('#import-file', saved);
    await page.click('#import-button');
    await page.waitForSelector('#import-status.alert-success');
    // The app's record and files are already here as they are (counted only when something else is).
    assert.equal(await page.textContent('#import-status'), 'Imported: 1 record and 0 files written.');
    const back = await records.get(ADMIN, 'com.example.notes', 'kept-note');
    assert.equal(back?.title, 'round trip');

    // Again, after the note was changed here: nothing is written, and the newer note stays.
    await records.put(ADMIN, 'com.example.notes', { _id: 'kept-note', _date_created: 1, _date_modified: 3, title: 'changed since' });
    await page.setInputFiles('#import-file', saved);
    await page.click('#import-button');
    await page.waitForFunction(() => /kept as it is here/.test(document.querySelector('#import-status.alert-success')?.textContent ?? ''));
    assert.equal(await page.textContent('#import-status'),
      'Nothing new: everything in the archive was already here. 1 record was kept as it is here: it was changed since the archive was made.');
    assert.equal((await records.get(ADMIN, 'com.example.notes', 'kept-note'))?.title, 'changed since');
    await page.locator('#data-panel').screenshot({ path: path.join(SHOTS, 'home-data.png') });

    // Something that is not an export is refused with the reason, and nothing changes.
    await page.setInputFiles('#import-file', { name: 'not-an-export.zip', mimeType: 'application/zip', buffer: Buffer.from('no zip at all') });
    await page.click('#import-button');
    await page.waitForSelector('#import-status.alert-error');
    assert.match(await page.textContent('#import-status') ?? '', /Nothing was imported/);
  });

  test('a sign-out the server could not carry out says so, and the page stays', async () => {
    await page.route('**/acctapi/logout', (route) => route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: 'unavailable', message: 'Busy.' }) }));
    try {
      await page.click('#signout');
      await page.waitForSelector('#apps-error:not([hidden])');
      assert.match(await page.textContent('#apps-error') ?? '', /Could not sign you out \(Busy\)\. Try again\./);
      assert.equal(page.url(), `${server.url}/home`);
    } finally {
      await page.unroute('**/acctapi/logout');
    }
  });

  test('an address with nothing behind it is a page for people, and JSON for programs', async () => {
    const res = await page.goto(`${server.url}/no/such/page`);
    assert.equal(res?.status(), 404);
    assert.equal(await page.textContent('h1'), 'Nothing here');
    assert.equal(await page.getAttribute('a', 'href'), `${server.url}/home`);
    await shot('not-found');
    await page.click('a');
    await page.waitForURL(`${server.url}/home`);
    // The APIs answer JSON even to a browser's navigation; scripts get JSON everywhere.
    const api = await page.goto(`${server.url}/ceps/read/com.example.notes/nothing`);
    assert.equal(api?.status(), 401);
    assert.match(api?.headers()['content-type'] ?? '', /application\/json/);
    const fetched = await page.evaluate(async () => {
      const r = await fetch('/no/such/page');
      return { status: r.status, type: r.headers.get('content-type') };
    });
    assert.deepEqual(fetched, { status: 404, type: 'application/json; charset=utf-8' });
  });

  test('after sign-in, `next` never leaves the site, however it is spelled', async () => {
    const other = await browser.newContext();
    try {
      const p = await other.newPage();
      // A tab or newline inside `/…/evil.example` vanishes in URL parsing, leaving `//evil.example`.
      for (const next of ['/\t/evil.example', '/\n/evil.example', '/\\evil.example', '//evil.example', 'https://evil.example/']) {
        await p.goto(`${server.url}/signin?next=${encodeURIComponent(next)}`);
        await p.fill('#user_id', 'bob');
        await p.fill('#password', 'bobs long password');
        await p.click('#signin');
        await p.waitForURL(`${server.url}/home`);
        await p.click('#signout');
        await p.waitForURL(`${server.url}/signin`);
      }
      // A path on the site is still honoured.
      await p.goto(`${server.url}/signin?next=${encodeURIComponent('/home?x=1')}`);
      await p.fill('#user_id', 'bob');
      await p.fill('#password', 'bobs long password');
      await p.click('#signin');
      await p.waitForURL(`${server.url}/home?x=1`);
    } finally {
      await other.close();
    }
  });

  test('a user who is not admin sees no users panel', async () => {
    const other = await browser.newContext({ viewport: { width: 420, height: 860 } });
    try {
      const p = await other.newPage();
      await p.goto(`${server.url}/signin`);
      await p.fill('#user_id', 'bob');
      await p.fill('#password', 'bobs long password');
      await p.click('#signin');
      await p.waitForURL(`${server.url}/home`);
      await p.waitForSelector('#apps-empty:not([hidden])');
      assert.equal(await p.isHidden('#users-panel'), true);
      await p.screenshot({ path: path.join(SHOTS, 'home-mobile.png'), fullPage: true });
    } finally {
      await other.close();
    }
  });

  test('the admin gives another user a new password, which signs them out everywhere', async () => {
    const bobElsewhere = await server.signIn('bob', 'bobs long password');
    await page.goto(`${server.url}/home`);
    const row = '#users-list li[data-user="bob"]';
    await page.waitForSelector(row);
    assert.equal(await page.$$eval(`#users-list li[data-user="${ADMIN}"] button`, (b) => b.length), 0, 'no such buttons on the admin\'s own row');
    await page.click(`${row} button:has-text("New password")`);
    await page.waitForSelector('#user-password-dialog[open]');
    await page.fill('#user-password-value', 'short');
    await page.click('#user-password-set');
    await page.waitForSelector('#user-password-error:not([hidden])');
    await page.fill('#user-password-value', 'bobs second password');
    await page.locator('#user-password-dialog').screenshot({ path: path.join(SHOTS, 'user-password-dialog.png') });
    await page.press('#user-password-value', 'Enter'); // Enter sets it, as the button does
    await page.waitForSelector('#user-password-dialog:not([open])', { state: 'attached' });
    assert.match(await page.textContent('#users-status') ?? '', /New password set for bob/);
    assert.ok(await server.services.accounts.verify('bob', 'bobs second password'));
    assert.equal((await server.app.inject({ url: '/acctapi/session', headers: { cookie: bobElsewhere } })).json().logged_in, false);

    // "Turn off 2FA" is offered only to someone who has it on, and the row says so.
    assert.equal(await page.locator(`${row} button:has-text("Turn off 2FA")`).count(), 0);
    const { secret } = await server.services.twoFactor.beginSetup('bob', 'freehold');
    await server.services.twoFactor.confirm('bob', new TOTP({ secret: Secret.fromBase32(secret) }).generate());
    await page.reload();
    await page.waitForSelector(`${row} .badge:has-text("2FA")`);
    page.once('dialog', (d) => void d.accept());
    await page.click(`${row} button:has-text("Turn off 2FA")`);
    await page.waitForFunction(() => /Two-factor sign-in is off for bob/.test(document.querySelector('#users-status')?.textContent ?? ''));
    assert.equal(await server.services.twoFactor.isEnabled('bob'), false);
    await page.waitForFunction((sel) => !document.querySelector(`${sel} .badge`)?.textContent?.includes('2FA') && !/Turn off 2FA/.test(document.querySelector(sel)?.textContent ?? ''), row);
  });

  test('the owner changes their own password and stays signed in', async () => {
    const elsewhere = await server.signIn(ADMIN);
    await page.fill('#password-current', 'not the password');
    await page.fill('#password-new', 'a brand new password');
    await page.fill('#password-repeat', 'a brand new password');
    await page.click('#password-change');
    await page.waitForSelector('#password-status.alert-error');
    assert.match(await page.textContent('#password-status') ?? '', /not your current password/);
    await page.fill('#password-current', TEST_PASSWORD);
    await page.fill('#password-repeat', 'something else entirely');
    await page.click('#password-change');
    await page.waitForFunction(() => /differ/.test(document.querySelector('#password-status')?.textContent ?? ''));
    await page.fill('#password-repeat', 'a brand new password');
    await page.click('#password-change');
    await page.waitForSelector('#password-status.alert-success');
    assert.match(await page.textContent('#password-status') ?? '', /Password changed\. Signed out in [1-9]\d* other places?\./);
    assert.equal((await server.app.inject({ url: '/acctapi/session', headers: { cookie: elsewhere } })).json().logged_in, false);
    await page.reload();
    await whoamiFilled();
    assert.ok(await server.services.accounts.verify(ADMIN, 'a brand new password'));
    await page.locator('#password-panel').screenshot({ path: path.join(SHOTS, 'home-password.png') });
  });

  test('a page whose session ended elsewhere sends the owner to sign in, saying why, and back', async () => {
    await page.goto(`${server.url}/home`);
    await whoamiFilled();
    // Signed out in another tab: the same cookies, used elsewhere.
    const cookie = (await context.cookies(server.url)).map((c) => `${c.name}=${c.value}`).join('; ');
    assert.equal((await server.app.inject({ method: 'POST', url: '/acctapi/logout', headers: { cookie } })).statusCode, 200);
    await page.fill('#app-password-app', 'com.example.notes');
    await page.click('#generate-app-password');
    await page.waitForURL(`${server.url}/signin?next=%2Fhome&reason=ended`);
    assert.match(await page.textContent('#signin-lead') ?? '', /Your session ended/);
    await page.fill('#user_id', ADMIN);
    await page.fill('#password', 'a brand new password');
    await page.click('#signin');
    await page.waitForURL(`${server.url}/home`);
  });

  test('the admin removes a user from the Users panel, asked first', async () => {
    await page.goto(`${server.url}/home`);
    const row = '#users-list li[data-user="bob"]';
    await page.waitForSelector(row);
    // The page's own dialog, as for an app; Cancel has the focus, and Escape is a no.
    await page.click(`${row} button:has-text("Remove")`);
    await page.waitForSelector('#remove-user-dialog[open]');
    assert.equal(await page.textContent('#remove-user-name'), 'bob');
    assert.equal(await page.evaluate(() => (document.activeElement as HTMLButtonElement | null)?.value), 'cancel');
    await page.locator('#remove-user-dialog').screenshot({ path: path.join(SHOTS, 'remove-user-dialog.png') });
    await page.keyboard.press('Escape');
    await page.waitForSelector('#remove-user-dialog:not([open])', { state: 'attached' });
    await page.click(`${row} button:has-text("Remove")`);
    await page.click('#remove-user-dialog button[value="cancel"]');
    assert.ok(await server.services.accounts.get('bob'), 'declining keeps bob');
    await page.click(`${row} button:has-text("Remove")`);
    await page.click('#remove-user-dialog button[value="remove"]');
    await page.waitForSelector(row, { state: 'detached' });
    await page.waitForFunction(() => document.activeElement?.id === 'users-heading' || document.activeElement?.closest('#users-list') !== null);
    assert.match(await page.textContent('#users-status') ?? '', /Removed bob and their data/);
    assert.equal(await server.services.accounts.get('bob'), null);
  });

  test('the pages logged no errors (CSP violations included)', () => {
    assert.deepEqual(pageErrors, []);
  });
});
