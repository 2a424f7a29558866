import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { FreeholdError } from '../../src/core/errors.js';
import { readAppPackage, type PackageSource } from '../../src/core/apps/package.js';
import { AppService } from '../../src/core/apps/service.js';
import { TokenService } from '../../src/core/auth/tokens.js';
import { StoreRegistry } from '../../src/storage/registry.js';
import { openBlobStore, openRecordStore } from '../../src/storage/urls.js';
import { OwnerTable } from '../../src/core/system-tables.js';
import { buildZip, lieAboutSize, zipFixture, FIXTURES } from './zip-helpers.js';

const OWNER = 'alice';
const MB = 1024 * 1024;
let dir: string;
let stores: StoreRegistry;
let apps: AppService;
let smallApps: AppService;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'freehold-pkg-'));
  const records = openRecordStore('sqlite::memory:');
  const blobs = openBlobStore(`fs:${path.join(dir, 'files')}`);
  await records.init();
  await blobs.init();
  stores = new StoreRegistry(records, blobs);
  const tokens = new TokenService(records, 'test-secret');
  const config = loadConfig({ FREEHOLD_CONFIG: '' }, { dataDir: dir });
  apps = new AppService(stores, tokens, config);
  // A lowered limit keeps the oversize tests fast.
  smallApps = new AppService(stores, tokens, { ...config, maxAppBytes: MB });
});

after(async () => {
  await stores.close();
  rmSync(dir, { recursive: true, force: true });
});

async function problemsOf(p: Promise<unknown>, code: 'invalid_package' | 'invalid_manifest' = 'invalid_package'): Promise<string[]> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof FreeholdError, String(err));
    assert.equal(err.code, code, `${err.code}: ${JSON.stringify(err.details)}`);
    return err.details as string[];
  }
  assert.fail('package was accepted');
}

/** Nothing of a refused install may remain: no blobs, no app record. */
async function assertNothingStored(): Promise<void> {
  const keys: string[] = [];
  for await (const b of stores.blobs(OWNER).list(`${OWNER}/`)) keys.push(b.key);
  assert.deepEqual(keys, []);
  assert.deepEqual(await apps.list(OWNER), []);
}

/** Installs and expects refusal with a problem matching `re`, leaving nothing behind. */
async function refused(source: PackageSource, re: RegExp, service = apps, code: 'invalid_package' | 'invalid_manifest' = 'invalid_package'): Promise<void> {
  const problems = await problemsOf(service.install(OWNER, source), code);
  assert.ok(problems.some((p) => re.test(p)), `expected ${re} in:\n${problems.join('\n')}`);
  await assertNothingStored();
}

const manifest = (name = 'com.example.app') => JSON.stringify({ identifier: name, version: '1', pages: { index: { html_file: 'index.html' } } });
const good = (extra: Array<{ name: string; data?: string | Buffer; mode?: number }> = [], name?: string) =>
  [{ name: 'manifest.json', data: manifest(name) }, { name: 'index.html', data: '<p>hi</p>' }, ...extra];

test('a good zip is read, with lazy streams', async () => {
  const pkg = await readAppPackage({ zipPath: await zipFixture('com.example.notes') }, { maxBytes: MB });
  try {
    assert.equal(pkg.manifest.identifier, 'com.example.notes');
    assert.deepEqual(pkg.files.map((f) => f.path).sort(),
      ['index.html', 'manifest.json', 'notes.js', 'settings.html', 'static/data.txt', 'static/main.mjs', 'static/notes.css']);
    const chunks: Buffer[] = [];
    for await (const c of (await pkg.files.find((f) => f.path === 'index.html')!.open()) as AsyncIterable<Buffer>) chunks.push(c);
    assert.match(Buffer.concat(chunks).toString(), /<h1 id="title">Notes<\/h1>/);
  } finally {
    await pkg.close();
  }
});

test('a zip wrapped in one folder is unwrapped; __MACOSX and .DS_Store are dropped', async () => {
  const zip = await zipFixture('com.example.legacy', {
    wrap: 'legacy-main',
    extra: [{ name: '__MACOSX/legacy-main/._index.html', data: 'junk' }, { name: 'legacy-main/.DS_Store', data: 'junk' }],
  });
  const pkg = await readAppPackage({ zipPath: zip }, { maxBytes: MB });
  await pkg.close();
  assert.equal(pkg.manifest.identifier, 'com.example.legacy');
  assert.deepEqual(pkg.files.map((f) => f.path).sort(), ['app_config.json', 'index.html', 'main.css', 'main.js']);
});

test('zip-slip, absolute, drive-letter and backslash names are all refused, all listed', async () => {
  const zip = await buildZip(good([
    { name: 'ZZ/evil.txt', data: 'x' },
    { name: 'Qetc/passwd', data: 'x' },
    { name: 'CQ/win.txt', data: 'x' },
    { name: 'a_b.txt', data: 'x' },
  ]), [['ZZ/evil.txt', '../evil.txt'], ['Qetc/passwd', '/etc/passwd'], ['CQ/win.txt', 'C:/win.txt'], ['a_b.txt', 'a\\b.txt']]);
  const problems = await problemsOf(apps.install(OWNER, { zipPath: zip }));
  for (const re of [/"\.\.\/evil\.txt": path escapes/, /"\/etc\/passwd": absolute path/, /"C:\/win\.txt": drive letter/, /"a\\\\b\.txt": backslash/]) {
    assert.ok(problems.some((p) => re.test(p)), `expected ${re} in:\n${problems.join('\n')}`);
  }
  await assertNothingStored();
});

test('a ../ directory entry is refused too', async () => {
  await refused({ zipPath: await buildZip([...good(), { name: 'ZZ/', dir: true }], [['ZZ/', '../']]) }, /path escapes/);
});

test('symlink entries are refused', async () => {
  await refused({ zipPath: await buildZip(good([{ name: 'link', data: '/etc/passwd', mode: 0o120777 }])) }, /"link": symbolic links are not allowed/);
});

test('more than 5,000 entries are refused before anything is read', async () => {
  const many = Array.from({ length: 5001 - 2 }, (_, i) => ({ name: `f/${i}.txt`, data: '' }));
  await refused({ zipPath: await buildZip(good(many)) }, /5001 entries; at most 5000/);
});

test('oversize by declared sizes is refused (lowered limit)', async () => {
  const big = Buffer.alloc(2 * MB, 'a');
  await refused({ zipPath: await buildZip(good([{ name: 'big.bin', data: big }])) }, /its files add up to 2 MB unpacked; at most 1 MB are allowed/, smallApps);
});

test('a real-size bomb (more than 50 MB declared) is refused from its declared sizes', async () => {
  const zip = await buildZip(good([{ name: 'bomb.bin', data: Buffer.alloc(51 * MB) }]));
  // The declared-size check's words: refused before a byte of it is unpacked.
  await refused({ zipPath: zip }, /its files add up to 51 MB unpacked; at most 50 MB are allowed/);
});

test('a zip that lies about its sizes is stopped while streaming, and nothing is kept', async () => {
  const zip = await buildZip(good([{ name: 'liar.bin', data: Buffer.alloc(3 * MB) }]));
  lieAboutSize(zip, 'liar.bin', 1000);
  const problems = await problemsOf(smallApps.install(OWNER, { zipPath: zip }));
  assert.match(problems.join('\n'), /liar\.bin: (too many bytes|holds more bytes)/);
  await assertNothingStored();
});

test('duplicate paths (exact, by case, file-and-folder) are refused', async () => {
  const zip = await buildZip(good([{ name: 'a.txt', data: '1' }, { name: 'b.txt', data: '2' }, { name: 'A.TXT', data: '3' }, { name: 'd', data: '' }, { name: 'd/e', data: '' }]),
    [['b.txt', 'a.txt']]);
  const problems = await problemsOf(apps.install(OWNER, { zipPath: zip }));
  assert.ok(problems.some((p) => /"a\.txt": appears more than once/.test(p)), problems.join('\n'));
  assert.ok(problems.some((p) => /"A\.TXT": differs only by case/.test(p)), problems.join('\n'));
  assert.ok(problems.some((p) => /"d": is both a file and a folder/.test(p)), problems.join('\n'));
  await assertNothingStored();
});

test('bad and reserved app names are refused', async () => {
  await refused({ zipPath: await buildZip(good([], 'not_an_app')) }, /^identifier: Invalid app name/, apps, 'invalid_manifest');
  await refused({ zipPath: await buildZip(good([], 'info.freezr.admin')) }, /reserved/, apps, 'invalid_manifest');
});

test('a missing manifest is refused', async () => {
  await refused({ zipPath: await buildZip([{ name: 'index.html', data: 'x' }, { name: 'x/y.js', data: 'y' }]) }, /no manifest\.json/);
});

test('a page naming a file not in the package is refused', async () => {
  await refused({ zipPath: await buildZip([{ name: 'manifest.json', data: manifest() }]) }, /no such file in the package: "index\.html"/, apps, 'invalid_manifest');
});

test('something that is not a zip is refused', async () => {
  const file = path.join(dir, 'not.zip');
  writeFileSync(file, 'hello, I am not a zip');
  await refused({ zipPath: file }, /^it is not a zip archive, or it is damaged or cut short \(the zip reader says: /);
});

test('folders: read like zips; symlinks refused', async () => {
  const folder = path.join(dir, 'folder-app');
  cpSync(path.join(FIXTURES, 'com.example.notes'), folder, { recursive: true });
  const pkg = await readAppPackage({ folder }, { maxBytes: MB });
  await pkg.close();
  assert.equal(pkg.files.length, 7);

  symlinkSync('/etc/passwd', path.join(folder, 'static', 'passwd'));
  await refused({ folder }, /"static\/passwd": symbolic links are not allowed/);
});

test('folders with too many entries are refused', async () => {
  const folder = path.join(dir, 'crowded');
  mkdirSync(path.join(folder, 'many'), { recursive: true });
  writeFileSync(path.join(folder, 'manifest.json'), manifest());
  writeFileSync(path.join(folder, 'index.html'), 'x');
  for (let i = 0; i < 5000; i++) writeFileSync(path.join(folder, 'many', `${i}`), '');
  await refused({ folder }, /more than 5000 entries/);
});

test('install, then a good update replaces files; a failed update keeps the old version', async () => {
  const v1 = await apps.install(OWNER, { zipPath: await zipFixture('com.example.notes') });
  assert.equal(v1.updated, false);
  assert.equal(v1.fileCount, 7);
  assert.match(await apps.readText(OWNER, 'com.example.notes', 'index.html'), /Notes/);

  // A broken update (page file missing) changes nothing.
  const broken = await zipFixture('com.example.notes', { replace: { 'manifest.json': read('manifest.json').replace('"index.html"', '"gone.html"') } });
  await assert.rejects(apps.install(OWNER, { zipPath: broken }), /invalid/);
  assert.equal((await apps.get(OWNER, 'com.example.notes'))!.installId, v1.installId);

  // An update that fails midway (the lying zip) deletes its partial files.
  const liar = await zipFixture('com.example.notes', { extra: [{ name: 'zz-liar.bin', data: Buffer.alloc(2 * MB) }] });
  lieAboutSize(liar, 'zz-liar.bin', 10);
  await assert.rejects(apps.install(OWNER, { zipPath: liar }));
  assert.equal((await apps.get(OWNER, 'com.example.notes'))!.installId, v1.installId);
  const keys: string[] = [];
  for await (const b of stores.blobs(OWNER).list(`${OWNER}/apps/com.example.notes/`)) keys.push(b.key);
  assert.ok(keys.every((k) => k.startsWith(`${OWNER}/apps/com.example.notes/${v1.installId}/`)), keys.join('\n'));

  const v2 = await apps.install(OWNER, { zipPath: await zipFixture('com.example.notes', { replace: { 'index.html': '<h1>v2</h1>' } }) });
  assert.equal(v2.updated, true);
  assert.equal(v2.installedAt, v1.installedAt);
  assert.equal(await apps.readText(OWNER, 'com.example.notes', 'index.html'), '<h1>v2</h1>');
  for await (const b of stores.blobs(OWNER).list(`${OWNER}/apps/com.example.notes/`)) {
    assert.ok(b.key.startsWith(`${OWNER}/apps/com.example.notes/${v2.installId}/`), `old file left: ${b.key}`);
  }

  // Declared indexes exist (ensureIndex is idempotent, so this only proves no error), permissions are listed.
  const perms = await apps.permissions(OWNER, 'com.example.notes');
  assert.deepEqual(perms.map((p) => [p.name, p.granted, p.grantees]), [['publish_posts', false, []]]);
  assert.equal(((await apps.rawManifest(OWNER, 'com.example.notes')) as { display_name: string }).display_name, 'Notes');

  // Remove keeps data unless asked; never another app's tables.
  const records = stores.records(OWNER);
  const rec = (id: string) => ({ _id: id, _date_created: 1, _date_modified: 1 });
  await records.put(OWNER, 'com.example.notes', rec('a'));
  await records.put(OWNER, 'com.example.notes.posts', rec('b'));
  await records.put(OWNER, 'com.example.notesx', rec('c'));
  await apps.remove(OWNER, 'com.example.notes');
  assert.equal(await apps.get(OWNER, 'com.example.notes'), null);
  assert.ok((await records.get(OWNER, 'com.example.notes.posts', 'b')) !== null);
  await apps.install(OWNER, { zipPath: await zipFixture('com.example.notes') });
  await apps.remove(OWNER, 'com.example.notes', { deleteData: true });
  const tables = (await records.listTables(OWNER)).map((t) => t.table);
  assert.ok(!tables.includes('com.example.notes') && !tables.includes('com.example.notes.posts'), tables.join());
  assert.ok(tables.includes('com.example.notesx'));
  assert.ok(!tables.includes(OwnerTable.apps) || (await apps.list(OWNER)).length === 0);
  await assertNothingStored();
  await records.dropTable(OWNER, 'com.example.notesx');
});

function read(rel: string): string {
  return readFileSync(path.join(FIXTURES, 'com.example.notes', rel), 'utf8');
}
