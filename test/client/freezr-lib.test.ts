import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { browserSkipReason, contextWithCookies, launchBrowser, type LaunchedBrowser } from '../helpers/browser.js';
import { FreeholdClient } from '../../src/client/sdk.js';

/**
 * The freezr client library (web/lib/freezr.js) in a real browser, inside real app
 * pages served by the server: the probe fixture exercises every API form and
 * reports into the DOM; the notes example is driven like a person would.
 */

const USER = 'bob';
const PROBE_APP = 'com.freehold.probe';
const NOTES_APP = 'com.freehold.notes';
const PROBE_DIR = fileURLToPath(new URL('../fixtures/apps/freezr-api-probe/', import.meta.url));
const NOTES_DIR = fileURLToPath(new URL('../../examples/notes/', import.meta.url));
const PNG_1X1 = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=', 'base64');

interface ProbeResult {
  ok: boolean;
  detail?: unknown;
  error?: string;
}
interface ProbeSummary {
  results: Record<string, ProbeResult>;
  ctx: Record<string, unknown>;
}

/** Collects what a page reports that a test should fail on: uncaught errors and CSP violations. */
function watchPage(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  return problems;
}

describe('freezr client library in the browser', { skip: browserSkipReason() }, () => {
  let server: TestServer;
  let launched: LaunchedBrowser;
  let context: BrowserContext;

  before(async () => {
    server = await startTestServer({ listen: true });
    await server.addUser(USER);
    await server.services.apps.install(USER, { folder: PROBE_DIR });
    await server.services.apps.install(USER, { folder: NOTES_DIR });
    launched = await launchBrowser();
    context = await contextWithCookies(launched.browser, server.url, await server.signIn(USER));
  });
  after(async () => {
    await context?.close();
    await launched?.close();
    await server?.close();
  });

  test('every freezr API form works in an app page (probe fixture)', async () => {
    const page = await context.newPage();
    const problems = watchPage(page);
    const res = await page.goto(`${server.url}/apps/${PROBE_APP}/index`);
    assert.equal(res?.status(), 200);
    await page.waitForSelector('#summary[data-done="true"]', { timeout: 30_000 });
    const summary = JSON.parse(await page.textContent('#summary') ?? '{}') as ProbeSummary;

    const failed = Object.entries(summary.results).filter(([, r]) => !r.ok).map(([name, r]) => `${name}: ${r.error}`);
    assert.deepEqual(failed, [], 'every probe passes');
    assert.ok(Object.keys(summary.results).length >= 20, 'all probes ran');
    assert.equal(summary.ctx.initPageScriptsCalls, 1, 'freezr.initPageScripts ran once, on load');
    assert.equal(summary.ctx.initReadyState, 'complete', 'as in freezr, once the whole page has loaded');
    // The one refusal: the page's own <script src> from another host (the CSP allows the
    // app's own only), reported by each of the page's two policies.
    const outside = problems.filter((p) => p.includes('cdn.example'));
    assert.ok(outside.length >= 1, problems.join('\n'));
    assert.deepEqual(problems.filter((p) => !p.includes('cdn.example')), []);

    // What the page wrote is really on the server, as seen through the API with a token.
    const api = new FreeholdClient({ baseUrl: server.url, token: await server.appToken(USER, PROBE_APP), appName: PROBE_APP, userId: USER });
    const itemA = await api.read('items', String(summary.ctx.itemA));
    assert.deepEqual([itemA.name, itemA.n, itemA.extra], ['a2', 1, true]);
    assert.equal((await api.read('items', String(summary.ctx.itemB))).flag, 'by-query');
    assert.equal((await api.read('items', 'fixed-item')).name, 'up2');
    assert.equal((await api.read('items', String(summary.ctx.recordFirst))).shape, 'record-first');
    assert.equal((await api.read('legacy', 'feps-fixed')).extra, 'set');
    assert.equal((await api.read('legacy', String(summary.ctx.freeprId))).kind, 'freepr2');
    assert.deepEqual((await api.query('things')).length, 0);
    assert.deepEqual(Buffer.from(await api.readFile('probe/dot.png')), PNG_1X1);
    await page.close();
  });

  test('the notes example: add, edit, attach, delete', async () => {
    const page = await context.newPage();
    const problems = watchPage(page);
    await page.goto(`${server.url}/apps/${NOTES_APP}/index`);
    await page.waitForSelector('#status:text("Ready.")');

    // Add two notes; the newest is listed first. Markup in a note stays text.
    await page.fill('#note-title', 'First');
    await page.fill('#note-body', 'plain body');
    await page.click('#save-note');
    await page.waitForSelector('#status:text("Note added.")');
    await page.fill('#note-title', '<b>Second</b>');
    await page.fill('#note-body', '<img src=x onerror=alert(1)>');
    await page.click('#save-note');
    await page.waitForSelector('#notes-list li[data-id] >> nth=1');
    const titles = await page.$$eval('#notes-list li[data-id] .title', (els) => els.map((e) => e.textContent));
    assert.deepEqual(titles, ['<b>Second</b>', 'First']);
    assert.equal(await page.locator('#notes-list b, #notes-list img').count(), 0, 'note text is never parsed as HTML');

    // Edit the older note and attach an image to it.
    const first = page.locator('#notes-list li[data-id]', { hasText: 'First' });
    const firstId = await first.getAttribute('data-id');
    assert.ok(firstId);
    await first.locator('.edit').click();
    assert.equal(await page.inputValue('#note-title'), 'First');
    await page.fill('#note-title', 'First, edited');
    await page.setInputFiles('#attach-file', { name: 'dot.png', mimeType: 'image/png', buffer: PNG_1X1 });
    await page.click('#save-note');
    await page.waitForSelector('#status:text("Note saved.")');
    const edited = page.locator(`#notes-list li[data-id="${firstId}"]`);
    assert.equal(await edited.locator('.title').textContent(), 'First, edited');
    await page.waitForFunction((id) => {
      const img = document.querySelector(`#notes-list li[data-id="${id}"] img`) as HTMLImageElement | null;
      return !!img && img.complete && img.naturalWidth === 1;
    }, firstId);
    assert.equal(await edited.locator('a.attachment-link').textContent(), 'dot.png');
    // Edited, it is now the newest.
    assert.equal(await page.locator('#notes-list li[data-id]').first().getAttribute('data-id'), firstId);

    const api = new FreeholdClient({ baseUrl: server.url, token: await server.appToken(USER, NOTES_APP), appName: NOTES_APP, userId: USER });
    const stored = await api.read<{ title: string; attachment: { fileId: string; name: string; type: string } }>('', firstId);
    assert.equal(stored.title, 'First, edited');
    assert.deepEqual(stored.attachment, { fileId: `attachments/${firstId}/dot.png`, name: 'dot.png', type: 'image/png' });
    assert.deepEqual(Buffer.from(await api.readFile(stored.attachment.fileId)), PNG_1X1);

    // Delete it: the note and its attachment go.
    await edited.locator('.delete').click();
    await page.waitForSelector('#status:text("Note deleted.")');
    assert.equal(await page.locator('#notes-list li[data-id]').count(), 1);
    await assert.rejects(api.read('', firstId), { status: 404 });
    await assert.rejects(api.readFile(stored.attachment.fileId), { status: 404 });

    // Errors reach the user: a title is required.
    await page.fill('#note-title', '   ');
    await page.click('#save-note');
    assert.equal(await page.getAttribute('#status', 'class'), 'status error');
    assert.deepEqual(problems, []);
    await page.close();
  });
});
