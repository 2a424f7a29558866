import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import yazl from 'yazl';
import type { Page } from 'playwright-core';
import { startTestServer, TEST_PASSWORD, type TestServer } from '../helpers/server.js';
import { browserSkipReason, launchBrowser, type LaunchedBrowser } from '../helpers/browser.js';

/**
 * The acceptance test: an owner signs in, installs the notes example through the
 * home page, writes a note in the app, and an app elsewhere reads it back over
 * CEPS with an app password.
 */

const APP = 'com.freehold.notes';
const OWNER = 'alice';
const NOTES_DIR = path.resolve('examples', 'notes');
const SHOTS = path.join('test-results', 'screenshots');

let server: TestServer;
let launched: LaunchedBrowser | undefined;
let page: Page;
let tempDir: string;

/** Zips a folder (files only, relative paths with `/`) the way a developer would. */
async function zipFolder(dir: string, zipPath: string): Promise<void> {
  const zip = new yazl.ZipFile();
  const walk = (rel: string) => {
    for (const entry of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile()) zip.addFile(path.join(dir, child), child);
    }
  };
  walk('');
  zip.end();
  const out = createWriteStream(zipPath);
  zip.outputStream.pipe(out);
  await once(out, 'close');
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  tempDir = mkdtempSync(path.join(tmpdir(), 'freehold-notes-e2e-'));
  server = await startTestServer({ listen: true });
  await server.addUser(OWNER, TEST_PASSWORD, true);
  if (browserSkipReason()) return;
  launched = await launchBrowser();
  page = await (await launched.browser.newContext({ viewport: { width: 1200, height: 800 } })).newPage();
});

after(async () => {
  await launched?.close();
  await server?.close();
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
});

test('install notes from the home page, write a note, read it over CEPS', { timeout: 90_000, skip: browserSkipReason() }, async () => {
  // Sign in through the page.
  await page.goto(`${server.url}/`);
  await page.waitForURL(`${server.url}/signin`);
  await page.fill('#user_id', OWNER);
  await page.fill('#password', TEST_PASSWORD);
  await page.click('#signin');
  await page.waitForURL(`${server.url}/home`);

  // Install through the upload form.
  const zipPath = path.join(tempDir, 'notes.zip');
  await zipFolder(NOTES_DIR, zipPath);
  await page.setInputFiles('#install-file', zipPath);
  await page.click('#install-button');
  const card = `#apps-list li[data-app="${APP}"]`;
  await page.waitForSelector(card);
  assert.match((await page.textContent('#install-status')) ?? '', /Installed/);
  await page.screenshot({ path: path.join(SHOTS, 'home-with-app.png'), fullPage: true });

  // Open the app from its card and write a note through its page.
  await page.click(`${card} a`);
  // The card links to /apps/<app> on the main origin, which hands off to the app's own origin.
  await page.waitForURL(new RegExp(`^http://${APP.replace(/\./g, '\\.')}\\.${OWNER}\\.localhost:\\d+/index$`));
  const title = `Shopping ${Date.now()}`;
  await page.fill('#note-title', title);
  await page.fill('#note-body', 'eggs, flour, milk');
  await page.click('#save-note');
  await page.waitForSelector('#notes-list li[data-id]');
  assert.match((await page.textContent('#notes-list')) ?? '', new RegExp(title));
  await page.screenshot({ path: path.join(SHOTS, 'notes-app.png'), fullPage: true });

  // An app elsewhere: app password (made with the session) → token → CEPS query.
  const cookies = await page.context().cookies(server.url);
  const cookieHeader = cookies.map((c) => `${c.name}=${c.value}`).join('; ');
  const made = await fetch(`${server.url}/acctapi/generateAppPassword?app_name=${APP}`, { headers: { cookie: cookieHeader } });
  assert.equal(made.status, 200, await made.clone().text());
  const { app_password: appPassword } = (await made.json()) as { app_password: string };

  const tokenRes = await fetch(`${server.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'password', username: OWNER, password: appPassword, client_id: APP }),
  });
  assert.equal(tokenRes.status, 200, await tokenRes.clone().text());
  const { access_token: accessToken } = (await tokenRes.json()) as { access_token: string };
  assert.ok(accessToken);

  const query = await fetch(`${server.url}/ceps/query/${APP}`, { headers: { authorization: `Bearer ${accessToken}` } });
  assert.equal(query.status, 200, await query.clone().text());
  const rows = (await query.json()) as Record<string, unknown>[];
  assert.ok(Array.isArray(rows));
  // The notes app's field names are its own business; the note's title must be in some record.
  const note = rows.find((r) => Object.values(r).includes(title));
  assert.ok(note, `note "${title}" not found in ${JSON.stringify(rows)}`);
  assert.equal(typeof note._id, 'string');
});

/** A zip of the given files in the test's temp folder; returns its path. */
async function zipFile(name: string, files: Record<string, string>): Promise<string> {
  const zip = new yazl.ZipFile();
  for (const [file, text] of Object.entries(files)) zip.addBuffer(Buffer.from(text), file);
  zip.end();
  const zipPath = path.join(tempDir, name);
  const out = createWriteStream(zipPath);
  zip.outputStream.pipe(out);
  await once(out, 'close');
  return zipPath;
}

test('a refused package shows its problems as a list', { timeout: 30_000, skip: browserSkipReason() }, async () => {
  const badPath = await zipFile('not-an-app.zip', { 'readme.txt': 'no manifest here' });

  await page.goto(`${server.url}/home`);
  await page.setInputFiles('#install-file', badPath);
  await page.click('#install-button');
  await page.waitForSelector('#install-status.alert-error');
  assert.match((await page.textContent('#install-status')) ?? '', /Not installed/);
  const problems = await page.$$eval('#install-status li', (items) => items.map((li) => li.textContent ?? ''));
  assert.ok(problems.some((p) => /manifest/.test(p)), `problems listed: ${JSON.stringify(problems)}`);
  await page.screenshot({ path: path.join(SHOTS, 'install-refused.png'), fullPage: true });
});

test('removing an app asks first, then takes its card away', { timeout: 30_000, skip: browserSkipReason() }, async () => {
  const card = `#apps-list li[data-app="${APP}"]`;
  await page.goto(`${server.url}/home`);
  await page.waitForSelector(card);
  // One question with three answers; Cancel (focused first) and Escape keep the app.
  await page.click(`${card} button`);
  await page.waitForSelector('#remove-dialog[open]');
  assert.match((await page.textContent('#remove-dialog')) ?? '', new RegExp(`Remove .*\\?\\s*${APP.replace(/\./g, '\\.')}`));
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel');
  await page.screenshot({ path: path.join(SHOTS, 'remove-dialog.png'), fullPage: true });
  await page.click('#remove-dialog button[value="cancel"]');
  await page.waitForSelector('#remove-dialog:not([open])', { state: 'attached' });
  await page.click(`${card} button`);
  await page.waitForSelector('#remove-dialog[open]');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#remove-dialog:not([open])', { state: 'attached' });
  await page.waitForTimeout(200);
  assert.equal(await page.isVisible(card), true);
  assert.ok(await server.services.apps.get(OWNER, APP), 'still installed');
  // Remove, deleting its data too.
  await page.click(`${card} button`);
  await page.click('#remove-dialog button[value="delete"]');
  await page.waitForSelector(card, { state: 'detached' });
  await page.waitForSelector('#apps-empty:not([hidden])');
  const left = (await server.services.stores.records(OWNER).listTables(OWNER)).map((x) => x.table).filter((x) => x === APP || x.startsWith(`${APP}.`));
  assert.deepEqual(left, [], 'its data went with it');
});

test('a package chosen while the home page is still loading can be installed', { timeout: 30_000, skip: browserSkipReason() }, async () => {
  const zipPath = await zipFile('early.zip', {
    'manifest.json': JSON.stringify({ identifier: 'com.example.early', pages: { index: { html_file: 'index.html' } } }),
    'index.html': '<p>early</p>',
  });
  // The panels are wired once the session is known: hold that answer back while the file is chosen.
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route('**/acctapi/session', async (route) => {
    await held;
    await route.continue();
  });
  try {
    await page.goto(`${server.url}/home`, { waitUntil: 'domcontentloaded' });
    await page.setInputFiles('#install-file', zipPath);
    release();
    await page.click('#install-button');
    await page.waitForSelector('#apps-list li[data-app="com.example.early"]');
  } finally {
    await page.unroute('**/acctapi/session');
  }
});

test('a package installed with parts left out says which', { timeout: 30_000, skip: browserSkipReason() }, async () => {
  const zipPath = await zipFile('tolerated.zip', {
    'manifest.json': JSON.stringify({
      identifier: 'com.example.tolerated', pages: { index: { html_file: 'index.html', css_files: ['missing.css'] } },
      permissions: [{ name: 'ask', type: 'use_llm' }],
    }),
    'index.html': '<p>hi</p>',
  });

  await page.goto(`${server.url}/home`);
  await page.setInputFiles('#install-file', zipPath);
  await page.click('#install-button');
  await page.waitForSelector('#install-status.alert-warning li');
  assert.match((await page.textContent('#install-status')) ?? '', /^Installed com\.example\.tolerated, without some things its manifest asks for; it may not work fully\. Left out of it:/);
  const left = await page.$$eval('#install-status li', (items) => items.map((li) => li.textContent ?? ''));
  assert.equal(left.length, 2, JSON.stringify(left));
  assert.ok(left.some((l) => /missing\.css/.test(l)) && left.some((l) => /use_llm/.test(l)), JSON.stringify(left));
  await page.waitForSelector('#apps-list li[data-app="com.example.tolerated"]');
  await page.screenshot({ path: path.join(SHOTS, 'install-warnings.png'), fullPage: true });
});

test('an update that changes an allowed permission says it is off until allowed again', { timeout: 30_000, skip: browserSkipReason() }, async () => {
  const name = 'com.example.widening';
  const version = (v: string, tables: string[]) => zipFile(`widening-${v}.zip`, {
    'manifest.json': JSON.stringify({
      identifier: name, version: v, pages: { index: { html_file: 'index.html' } },
      permissions: [{ name: 'read_notes', type: 'read_all', table_id: tables }],
    }),
    'index.html': '<p>hi</p>',
  });
  const installVia = async (zipPath: string) => {
    await page.goto(`${server.url}/home`);
    await page.setInputFiles('#install-file', zipPath);
    await page.click('#install-button');
    await page.waitForFunction(() => /^(Installed|Updated|Not installed)/.test(document.querySelector('#install-status')?.textContent ?? ''));
    return (await page.textContent('#install-status')) ?? '';
  };
  assert.match(await installVia(await version('1.0.0', [APP])), /^Installed com\.example\.widening 1\.0\.0\. One permission waits for your decision under "Permissions apps ask for": read_notes\.$/);
  await server.services.permissions.change(OWNER, { name: 'read_notes', requestor_app: name, action: 'Accept' });
  const updated = await installVia(await version('1.1.0', [APP, `${APP}.tags`]));
  assert.equal(updated, 'Updated com.example.widening 1.1.0. One permission waits for your decision under "Permissions apps ask for": read_notes. '
    + 'read_notes was allowed before; this version changed what it asks for, so it is off until you allow it again.');
  assert.equal(await server.services.permissions.isGranted(OWNER, name, 'read_notes'), false);
});

test('data an app left on removal is listed on the home page and can be deleted there', { timeout: 30_000, skip: browserSkipReason() }, async () => {
  const name = 'com.example.diary';
  const zipPath = await zipFile('diary.zip', {
    'manifest.json': JSON.stringify({ identifier: name, pages: { index: { html_file: 'index.html' } } }),
    'index.html': '<p>diary</p>',
  });
  await page.goto(`${server.url}/home`);
  await page.setInputFiles('#install-file', zipPath);
  await page.click('#install-button');
  const card = `#apps-list li[data-app="${name}"]`;
  await page.waitForSelector(card);
  const records = server.services.stores.records(OWNER);
  for (const id of ['monday', 'tuesday']) await records.put(OWNER, `${name}.entries`, { _id: id, _date_created: 1, _date_modified: 1, text: id });

  // Remove it, keeping its data.
  await page.click(`${card} button`);
  await page.click('#remove-dialog button[value="keep"]');
  await page.waitForSelector(card, { state: 'detached' });
  const row = `#kept-list li[data-kept="${name}"]`;
  await page.waitForSelector(row);
  assert.equal(await page.isVisible('#kept'), true);
  assert.match((await page.textContent(row)) ?? '', /2 records/);
  await page.screenshot({ path: path.join(SHOTS, 'home-kept-data.png'), fullPage: true });

  // Declining keeps it; accepting deletes it, and the list goes away.
  page.once('dialog', (d) => void d.dismiss());
  await page.click(`${row} button`);
  await page.waitForTimeout(200);
  assert.equal(await page.isVisible(row), true);
  const messages: string[] = [];
  page.once('dialog', (d) => { messages.push(d.message()); void d.accept(); });
  await page.click(`${row} button`);
  await page.waitForSelector(row, { state: 'detached' });
  assert.match(messages[0] ?? '', /Delete the data com\.example\.diary left here \(2 records\)/);
  assert.equal(await page.isVisible('#kept'), false);
  const left = (await records.listTables(OWNER)).map((x) => x.table).filter((x) => x === name || x.startsWith(`${name}.`));
  assert.deepEqual(left, [], 'its data is gone');
});
