import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import yauzl from 'yauzl';
import yazl from 'yazl';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { multipart } from '../helpers/multipart.js';
import { FIXTURES } from '../apps/zip-helpers.js';
import { FreeholdError } from '../../src/core/errors.js';
import { exportOwner, type ExportManifest } from '../../src/core/portability/export.js';
import { importOwner } from '../../src/core/portability/import.js';
import type { StoredRecord } from '../../src/storage/types.js';

const APP = 'com.example.notes';
const USER = 'alice';
const work = mkdtempSync(path.join(tmpdir(), 'freehold-portability-'));
let n = 0;
const tmpFile = (name = 'archive.zip') => path.join(work, `${++n}-${name}`);

// ---------- helpers ----------

interface ZipItem {
  name: string;
  data: Buffer;
}

/** Every entry of a (small) zip, in zip order. */
async function readZip(file: string): Promise<ZipItem[]> {
  const zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false });
  const items: ZipItem[] = [];
  try {
    for await (const entry of zip.eachEntry()) {
      const chunks: Buffer[] = [];
      for await (const c of await zip.openReadStreamPromise(entry) as AsyncIterable<Buffer>) chunks.push(c);
      items.push({ name: entry.fileName, data: Buffer.concat(chunks) });
    }
  } finally {
    zip.close();
  }
  return items;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Writes entries into a new zip, stored (not deflated) so that tests can patch bytes.
 * `manifest: 'recompute'` makes a manifest consistent with the entries, so that the
 * only fault left is the one a test planted.
 */
async function writeZip(items: ZipItem[], opts: { manifest: 'keep' | 'recompute'; patch?: [string, string]; noUtf8Flag?: boolean } = { manifest: 'keep' }): Promise<string> {
  let list = items;
  if (opts.manifest === 'recompute') {
    const old = JSON.parse(items.find((i) => i.name === 'manifest.json')!.data.toString()) as ExportManifest;
    const manifest: ExportManifest = { ...old, tables: {}, entries: {} };
    for (const i of items) {
      if (i.name === 'manifest.json') continue;
      manifest.entries[i.name] = { sha256: sha256(i.data), size: i.data.length };
      const m = /^tables\/(.+)\.jsonl$/.exec(i.name);
      if (m) manifest.tables[m[1]!] = i.data.toString().split('\n').filter((l) => l !== '').length;
    }
    list = [...items.filter((i) => i.name !== 'manifest.json'), { name: 'manifest.json', data: Buffer.from(JSON.stringify(manifest)) }];
  }
  const zip = new yazl.ZipFile();
  for (const i of list) zip.addBuffer(i.data, i.name, { compress: false });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream as AsyncIterable<Buffer>) chunks.push(c);
  let buf = Buffer.concat(chunks);
  if (opts.patch) {
    // Same-length swap everywhere (names in headers and in the stored manifest): what a hostile tool writes.
    const [from, to] = opts.patch.map((s) => Buffer.from(s));
    assert.equal(from!.length, to!.length);
    for (let i = buf.indexOf(from!); i >= 0; i = buf.indexOf(from!, i + 1)) to!.copy(buf, i);
  }
  if (opts.noUtf8Flag) {
    // As Info-ZIP's zip 3.0 writes: UTF-8 names, flag bit 11 clear, in local and central headers.
    for (const [signature, flagAt] of [[0x04034b50, 6], [0x02014b50, 8]] as const) {
      const sig = Buffer.alloc(4);
      sig.writeUInt32LE(signature);
      for (let i = buf.indexOf(sig); i >= 0; i = buf.indexOf(sig, i + 4)) buf.writeUInt16LE(buf.readUInt16LE(i + flagAt) & ~0x800, i + flagAt);
    }
  }
  const file = tmpFile();
  writeFileSync(file, buf);
  return file;
}

async function exportToFile(t: TestServer, owner = USER): Promise<string> {
  const file = tmpFile();
  await exportOwner(t.services, owner, createWriteStream(file), undefined, { serverVersion: 'test' });
  return file;
}

/** Every record of every table of an owner, by table then id. */
async function allRecords(t: TestServer, owner = USER): Promise<Map<string, StoredRecord[]>> {
  const store = t.services.stores.records(owner);
  const out = new Map<string, StoredRecord[]>();
  for (const { table } of await store.listTables(owner)) {
    out.set(table, await store.query(owner, table, { op: 'true' }, { sort: [{ path: ['_id'], direction: 1 }], skip: 0, limit: 5000 }));
  }
  return out;
}

async function counts(t: TestServer, owner = USER): Promise<{ records: number; blobs: number; changes: number }> {
  const store = t.services.stores.records(owner);
  const records = (await store.listTables(owner)).reduce((s, x) => s + x.count, 0);
  let blobs = 0;
  for await (const _ of t.services.stores.blobs(owner).list(`${owner}/`)) blobs++;
  const changes = (await store.changes(owner, 0, 100_000)).length;
  return { records, blobs, changes };
}

function withoutInstallId(r: StoredRecord): StoredRecord {
  const { install_id: _ignored, ...rest } = r;
  return rest as StoredRecord;
}

function randomStream(total: number, chunk = 64 * 1024): Readable {
  let left = total;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const size = Math.min(chunk, left);
      left -= size;
      this.push(randomBytes(size));
    },
  });
}

// ---------- memory ----------

describe('memory stays flat', () => {
  const DATA = 128 * 1024 * 1024;
  let m: TestServer;
  before(async () => {
    m = await startTestServer();
    await m.addUser('bob');
    await m.addUser('carol');
    // Real files: their bytes and the records that make them files.
    const access = { userId: 'bob', ownerId: 'bob', appName: APP };
    for (let i = 0; i < 16; i++) {
      await m.services.files.upload(access, randomStream(DATA / 16), `blob-${i}.bin`, 'application/octet-stream', { targetFolder: 'big' });
    }
  });
  after(async () => m.close());

  /**
   * Peak RSS above the level just before `work`, sampled as it runs. Streaming still
   * leaves some tens of MB of garbage chunks between collections whatever the data size
   * (measured flat from 64 to 256 MB), hence data big enough for 40% to sit well above that.
   */
  async function rssGrowth(work: () => Promise<unknown>): Promise<{ growth: number; seconds: number }> {
    const base = process.memoryUsage().rss;
    let peak = base;
    const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 10);
    const started = performance.now();
    try {
      await work();
    } finally {
      clearInterval(timer);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    return { growth: peak - base, seconds: (performance.now() - started) / 1000 };
  }

  let archive = '';
  test(`exporting ${DATA / 1024 / 1024} MB of blobs grows RSS by well under the data size`, async (t) => {
    archive = tmpFile('big.zip');
    const { growth, seconds } = await rssGrowth(() => exportOwner(m.services, 'bob', createWriteStream(archive)));
    t.diagnostic(`export: ${(DATA / 1048576 / seconds).toFixed(0)} MB/s, RSS growth ${(growth / 1048576).toFixed(1)} MB`);
    assert.ok(statSync(archive).size > DATA);
    assert.ok(growth < DATA * 0.4, `RSS grew by ${(growth / 1048576).toFixed(1)} MB`);
  });

  test('importing it back grows RSS by well under the data size too', async (t) => {
    const { growth, seconds } = await rssGrowth(() => importOwner(m.services, 'carol', archive));
    t.diagnostic(`import (verify + write): ${(DATA / 1048576 / seconds).toFixed(0)} MB/s, RSS growth ${(growth / 1048576).toFixed(1)} MB`);
    assert.ok(growth < DATA * 0.4, `RSS grew by ${(growth / 1048576).toFixed(1)} MB`);
    const head = await m.services.stores.blobs('carol').head(`carol/files/${APP}/big/blob-3.bin`);
    assert.equal(head?.etag, (await m.services.stores.blobs('bob').head(`bob/files/${APP}/big/blob-3.bin`))?.etag);
  });
});

// ---------- round trip ----------

describe('export and import', () => {
  let a: TestServer; // the source
  let b: TestServer; // a fresh server the archive moves to
  let c: TestServer; // stays empty while refused archives are thrown at it
  let archive = '';
  let items: ZipItem[] = [];
  const picture = randomBytes(300 * 1024);
  const big = 'x'.repeat(2 * 1024 * 1024 - 200);

  before(async () => {
    [a, b, c] = await Promise.all([startTestServer(), startTestServer(), startTestServer()]);
    for (const s of [a, b, c]) await s.addUser(USER);
    await a.services.apps.install(USER, { folder: path.join(FIXTURES, APP) });
    const token = await a.appToken(USER, APP);
    const write = async (table: string, body: unknown) => {
      const res = await a.app.inject({ method: 'POST', url: `/ceps/write/${table}`, payload: body as object, headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.statusCode, 200, res.body);
    };
    await write(APP, { title: 'héllo wörld ✓ 日本語 🎉', body: 'line\nbreak "quoted" \\ back' });
    await write(`${APP}.posts`, { title: 'nested', meta: { tag: 'a', deep: { list: [1, 'two', { three: 3 }, null, true] } }, created: 1 });
    await write(`${APP}.posts`, { title: 'big', payload: big });
    // Enough records in one table to page through the store several times.
    const now = Date.now();
    const ops = Array.from({ length: 2500 }, (_, i) => ({
      kind: 'put' as const, table: `${APP}.tags`,
      record: { _id: `tag-${String(i).padStart(5, '0')}`, _date_created: now - i, _date_modified: now + i, n: i },
    }));
    await a.services.stores.records(USER).batch(USER, ops);
    for (const [opts, data] of [[{ targetFolder: 'pics', fileName: 'été 1.png' }, picture], [{ fileName: 'notes.txt' }, Buffer.from('plain\n')]] as const) {
      const { body, contentType } = multipart([
        { name: 'options', value: JSON.stringify(opts) },
        { name: 'file', value: data, filename: 'upload.bin', contentType: 'image/png' },
      ]);
      const res = await a.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: body, headers: { 'content-type': contentType, authorization: `Bearer ${token}` } });
      assert.equal(res.statusCode, 200, res.body);
    }
  });

  after(async () => {
    await Promise.all([a, b, c].map((s) => s?.close()));
    rmSync(work, { recursive: true, force: true });
  });

  test('the archive is an ordinary zip: ordered entries, manifest last with matching hashes', async () => {
    archive = await exportToFile(a);
    items = await readZip(archive);
    const names = items.map((i) => i.name);
    assert.equal(names.at(-1), 'manifest.json');
    const rank = (name: string) => ['tables/', 'files/', 'apps/', 'permissions.json', 'contacts.jsonl', 'messages.jsonl', 'manifest.json']
      .findIndex((p) => name.startsWith(p));
    assert.deepEqual(names.map(rank), [...names.map(rank)].sort((x, y) => x - y), 'entries in format order');
    for (const name of ['permissions.json', 'contacts.jsonl', 'messages.jsonl', 'tables/system.apps.jsonl', `files/${APP}/pics/été 1.png`, `apps/${APP}/manifest.json`, `apps/${APP}/static/data.txt`]) {
      assert.ok(names.includes(name), name);
    }

    const manifest = JSON.parse(items.at(-1)!.data.toString()) as ExportManifest;
    assert.equal(manifest.format, 'freehold-export');
    assert.equal(manifest.format_version, 1);
    assert.equal(manifest.owner, USER);
    assert.equal(manifest.server_version, 'test');
    assert.deepEqual(Object.keys(manifest.entries).sort(), names.slice(0, -1).sort());
    for (const i of items.slice(0, -1)) {
      assert.deepEqual(manifest.entries[i.name], { sha256: sha256(i.data), size: i.data.length }, i.name);
    }
    const stored = await a.services.stores.records(USER).listTables(USER);
    assert.deepEqual(manifest.tables, Object.fromEntries(stored.map((s) => [s.table, s.count])));
    assert.equal(manifest.tables[`${APP}.tags`], 2500);

    for (const i of items.filter((x) => x.name.startsWith('tables/'))) {
      const records = i.data.toString().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as StoredRecord);
      const ids = records.map((r) => r._id);
      assert.deepEqual(ids, [...ids].sort(), `${i.name} sorted by _id`);
      for (const r of records) assert.ok(typeof r._date_created === 'number' && typeof r._date_modified === 'number');
    }
    assert.deepEqual(items.find((i) => i.name === `files/${APP}/pics/été 1.png`)!.data, picture);
    assert.deepEqual(JSON.parse(items.find((i) => i.name === 'permissions.json')!.data.toString())[0].name, 'publish_posts');
  });

  test('imported into a fresh server: same records (ids, dates), same files, and the app works', async () => {
    const summary = await importOwner(b.services, USER, archive);
    assert.equal(summary.apps, 1);
    assert.equal(summary.files, 2);
    const [from, to] = [await allRecords(a), await allRecords(b)];
    assert.deepEqual([...to.keys()], [...from.keys()]);
    for (const [table, records] of from) {
      const mapped = table === 'system.apps' ? (rs: StoredRecord[]) => rs.map(withoutInstallId) : (rs: StoredRecord[]) => rs;
      assert.deepEqual(mapped(to.get(table)!), mapped(records), table);
    }
    const bigRecord = to.get(`${APP}.posts`)!.find((r) => r.title === 'big')!;
    assert.equal(bigRecord.payload, big);

    const token = await b.appToken(USER, APP);
    const file = await b.app.inject({ method: 'GET', url: `/feps/userfiles/${APP}/${USER}/pics/${encodeURIComponent('été 1.png')}`, headers: { authorization: `Bearer ${token}` } });
    assert.equal(file.statusCode, 200);
    assert.deepEqual(file.rawPayload, picture);
    assert.equal(file.headers['content-type'], 'image/png');

    const cookie = await b.signIn(USER);
    const page = await b.appGet(cookie, APP, 'index');
    assert.equal(page.statusCode, 200, page.body);
    assert.match(page.body, /<h1 id="title">Notes<\/h1>/);
    const data = await b.appGet(cookie, APP, 'static/data.txt');
    assert.equal(data.body, readFileSync(path.join(FIXTURES, APP, 'static', 'data.txt'), 'utf8'));
  });

  test('importing the same archive again changes nothing', async () => {
    const before = await counts(b);
    const records = await allRecords(b);
    const summary = await importOwner(b.services, USER, archive);
    assert.equal(summary.recordsWritten, 0);
    assert.equal(summary.blobsWritten, 0);
    assert.equal(summary.appFilesWritten, 0);
    assert.ok(summary.appFilesUnchanged > 0, "the app's files are found installed");
    assert.deepEqual(await counts(b), before, 'no record, blob or change-feed entry added');
    assert.deepEqual(await allRecords(b), records);
  });

  describe('refused archives write nothing', () => {
    /** Imports into the empty server and expects a refusal whose message matches. */
    async function refused(file: string, message: RegExp): Promise<void> {
      const before = await counts(c);
      await assert.rejects(importOwner(c.services, USER, file), (err: unknown) => {
        assert.ok(err instanceof FreeholdError, String(err));
        assert.ok(['invalid_package', 'bad_request'].includes(err.code), err.code);
        assert.match(err.message, message);
        return true;
      });
      assert.deepEqual(await counts(c), before);
      assert.deepEqual(before, { records: 0, blobs: 0, changes: 0 });
    }

    test('a truncated archive', async () => {
      const bytes = readFileSync(archive);
      for (const keep of [bytes.length - 10, Math.floor(bytes.length / 2)]) {
        const file = tmpFile();
        writeFileSync(file, bytes.subarray(0, keep));
        await refused(file, /not a readable zip file \(truncated/);
      }
    });

    test('one tampered byte in one entry', async () => {
      const bytes = readFileSync(archive);
      // The picture is stored, not deflated (it would not shrink), so its bytes are in the file as is.
      const at = bytes.indexOf(picture.subarray(1000, 1064));
      assert.ok(at > 0);
      bytes[at + 10] = bytes[at + 10]! ^ 0xff;
      const file = tmpFile();
      writeFileSync(file, bytes);
      await refused(file, /"files\/com\.example\.notes\/pics\/été 1\.png": its sha256 does not match/);
    });

    test('a changed entry whose hash no longer matches (deflated table)', async () => {
      const changed = items.map((i) => i.name === `tables/${APP}.jsonl` ? { ...i, data: Buffer.from(i.data.toString().replace('break', 'brake')) } : i);
      await refused(await writeZip(changed), /"tables\/com\.example\.notes\.jsonl": its sha256 does not match/);
    });

    test('an extra entry not listed in the manifest', async () => {
      const extra = [...items.slice(0, -1), { name: `files/${APP}/sneaky.txt`, data: Buffer.from('hi') }, items.at(-1)!];
      await refused(await writeZip(extra), /"files\/com\.example\.notes\/sneaky\.txt": not listed in manifest\.json/);
    });

    test('a bad table name', async () => {
      const renamed = items.map((i) => i.name === `tables/${APP}.tags.jsonl` ? { ...i, name: 'tables/Bad Table!.jsonl' } : i);
      await refused(await writeZip(renamed, { manifest: 'recompute' }), /"tables\/Bad Table!\.jsonl": bad table name/);
    });

    test('a record without _id', async () => {
      const broken = items.map((i) => i.name === `tables/${APP}.posts.jsonl`
        ? { ...i, data: Buffer.from(i.data.toString().replace(/"_id":"[^"]+",?/, '')) } : i);
      await refused(await writeZip(broken, { manifest: 'recompute' }), /"tables\/com\.example\.notes\.posts\.jsonl": line \d+ has no _id/);
    });

    test('records CEPS would refuse a client: odd dates, server fields, $ names, over 2 MB, too deep', async () => {
      const table = `tables/${APP}.posts.jsonl`;
      /** The posts table with one more record appended (after the others: ids stay sorted). */
      const withRecord = (r: object) => items.map((i) => i.name === table ? { ...i, data: Buffer.concat([i.data, Buffer.from(`${JSON.stringify({ _id: 'zzzz-last', _date_created: 1, _date_modified: 2, ...r })}\n`)]) } : i);
      const cases: Array<[object, RegExp]> = [
        [{ _date_created: 1.5 }, /_date_created must be a whole number of epoch milliseconds/],
        [{ _date_modified: 1e300 }, /_date_modified must be a whole number of epoch milliseconds/],
        [{ _date_modified: -5 }, /_date_modified must be a whole number/],
        [{ _date_modified: Date.now() + 3 * 24 * 3600 * 1000 }, /_date_modified is \S+, more than a day ahead of this server's clock/],
        [{ _owner: 'mallory' }, /field _owner is not allowed/],
        [{ _evil: 1 }, /field _evil is not allowed/],
        [{ $where: 'x' }, /field names may not start with \$/],
        [{ t: 'x'.repeat(2 * 1024 * 1024 + 10) }, /A record may be at most 2097152 bytes \(2 MB\) of its own fields/],
        [{ deep: JSON.parse('['.repeat(120) + ']'.repeat(120)) as unknown }, /A record may be nested at most 100 levels/],
      ];
      for (const [extra, message] of cases) {
        await refused(await writeZip(withRecord(extra), { manifest: 'recompute' }), new RegExp(`"${table.replace(/\./g, '\\.')}": line \\d+: ${message.source}`));
      }
    });

    test('a path that climbs out (../)', async () => {
      const climbing = [...items.slice(0, -1), { name: `files/${APP}/xx/yy/evil.txt`, data: Buffer.from('evil') }, items.at(-1)!];
      const file = await writeZip(climbing, { manifest: 'recompute', patch: [`${APP}/xx/yy/evil`, `${APP}/../../evil`] });
      await refused(file, /"files\/com\.example\.notes\/\.\.\/\.\.\/evil\.txt": path escapes/);
    });

    test('an absolute path, and a symlink', async () => {
      const absolute = [...items.slice(0, -1), { name: 'xfiles/evil.txt', data: Buffer.from('evil') }, items.at(-1)!];
      await refused(await writeZip(absolute, { manifest: 'recompute', patch: ['xfiles/evil', '/files/evil'] }), /"\/files\/evil\.txt": absolute path/);

      const zip = new yazl.ZipFile();
      zip.addBuffer(Buffer.from('/etc/passwd'), `files/${APP}/link`, { mode: 0o120777 });
      zip.addBuffer(Buffer.from('{}'), 'manifest.json');
      zip.end();
      const chunks: Buffer[] = [];
      for await (const ch of zip.outputStream as AsyncIterable<Buffer>) chunks.push(ch);
      const file = tmpFile();
      writeFileSync(file, Buffer.concat(chunks));
      await refused(file, /"files\/com\.example\.notes\/link": not a regular file/);
    });

    test('a manifest of another format or version, or a missing entry', async () => {
      const withManifest = (m: object) => [...items.slice(0, -1), { name: 'manifest.json', data: Buffer.from(JSON.stringify(m)) }];
      const manifest = JSON.parse(items.at(-1)!.data.toString()) as ExportManifest;
      await refused(await writeZip(withManifest({ ...manifest, format_version: 2 })), /format_version 2 is not supported/);
      await refused(await writeZip(withManifest({ ...manifest, format: 'other' })), /not a freehold export/);
      const missing = items.filter((i) => i.name !== 'contacts.jsonl');
      await refused(await writeZip(missing), /"contacts\.jsonl": listed in manifest\.json but missing/);
    });
  });

  test('HTTP: GET /acctapi/export streams the zip; POST /acctapi/import brings it in', async () => {
    const cookieA = await a.signIn(USER);
    const res = await a.app.inject({ method: 'GET', url: '/acctapi/export', headers: { cookie: cookieA } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/zip');
    assert.match(String(res.headers['content-disposition']), /^attachment; filename="freehold-export-alice-\d{4}-\d\d-\d\d\.zip"$/);
    assert.equal((await a.app.inject({ method: 'GET', url: '/acctapi/export' })).statusCode, 401);
    // HEAD says the download would start, with its headers, and makes no archive.
    const head = await a.app.inject({ method: 'HEAD', url: '/acctapi/export', headers: { cookie: cookieA } });
    assert.equal(head.statusCode, 200);
    assert.equal(head.headers['content-type'], 'application/zip');
    assert.equal(head.headers['content-disposition'], res.headers['content-disposition']);
    assert.equal(head.payload, '');

    const cookieC = await c.signIn(USER);
    const { body, contentType } = multipart([{ name: 'file', value: res.rawPayload, filename: 'export.zip', contentType: 'application/zip' }]);
    const imported = await c.app.inject({ method: 'POST', url: '/acctapi/import', payload: body, headers: { 'content-type': contentType, cookie: cookieC } });
    assert.equal(imported.statusCode, 200, imported.body);
    const reply = imported.json();
    assert.equal(reply.imported, true);
    assert.equal(reply.files, 2);
    assert.equal(reply.apps, 1);
    assert.equal(reply.tables[`${APP}.tags`], 2500);
    assert.equal(reply.files_written, 2, 'the two uploads');
    assert.equal(reply.app_files_written, 7, "the app's seven files, counted apart");
    assert.ok(reply.records_written >= 2500, String(reply.records_written));
    assert.equal(reply.records_kept_newer, 0);
    const [from, to] = [await allRecords(a), await allRecords(c)];
    for (const [table, records] of from) {
      if (table !== 'system.apps') assert.deepEqual(to.get(table), records, table);
    }

    const bad = multipart([{ name: 'file', value: res.rawPayload.subarray(0, 1000), filename: 'export.zip' }]);
    const refusedRes = await c.app.inject({ method: 'POST', url: '/acctapi/import', payload: bad.body, headers: { 'content-type': bad.contentType, cookie: cookieC } });
    assert.equal(refusedRes.statusCode, 400);
    assert.equal(refusedRes.json().error, 'invalid_package');

    // An app package sent to the import says what it is and where it goes, with its manifest at the root or in a folder.
    for (const name of ['manifest.json', 'notes-main/manifest.json', 'app_config.json']) {
      const appZip = await writeZip([{ name, data: Buffer.from(JSON.stringify({ identifier: 'com.example.notes', pages: {} })) }]);
      const sent = multipart([{ name: 'file', value: readFileSync(appZip), filename: 'notes.zip', contentType: 'application/zip' }]);
      const res2 = await c.app.inject({ method: 'POST', url: '/acctapi/import', payload: sent.body, headers: { 'content-type': sent.contentType, cookie: cookieC } });
      assert.equal(res2.statusCode, 400, name);
      assert.match(res2.json().message, /this is an app package, not a freehold export: install it as an app/, name);
    }
  });

  test('an unpacked export zipped again by a tool that writes UTF-8 names without their flag (Info-ZIP zip 3.0) imports the same', async () => {
    const rezipped = await writeZip(await readZip(archive), { manifest: 'keep', noUtf8Flag: true });
    const names = (await readZip(rezipped)).map((i) => i.name);
    assert.ok(names.some((n) => n.startsWith('files/')) && !names.some((n) => n.includes('été')), 'read by the format\'s rule (CP437), the name comes out garbled');
    const again = await importOwner(b.services, USER, rezipped);
    assert.equal(again.files, 2);
    assert.deepEqual([again.recordsWritten, again.blobsWritten, again.appFilesWritten], [0, 0, 0], 'everything is found where the first import put it, é and all');
  });
});

describe('grants, quotas and concurrency across export and import', () => {
  let source: TestServer;
  let target: TestServer;
  let archive = '';

  before(async () => {
    mkdirSync(work, { recursive: true }); // the suite above removes it when done
    [source, target] = await Promise.all([startTestServer(), startTestServer()]);
    for (const s of [source, target]) await s.addUser(USER);
    await source.services.apps.install(USER, { folder: path.join(FIXTURES, APP) });
    await source.services.permissions.change(USER, { name: 'publish_posts', requestor_app: APP, action: 'Accept' });
    const token = await source.appToken(USER, APP);
    const { body, contentType } = multipart([{ name: 'options', value: '{"fileName":"photo.bin"}' }, { name: 'file', value: randomBytes(200_000), filename: 'photo.bin' }]);
    const up = await source.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: body, headers: { 'content-type': contentType, authorization: `Bearer ${token}` } });
    assert.equal(up.statusCode, 200, up.body);
    archive = await exportToFile(source);
  });
  after(async () => {
    await Promise.all([source, target].map((s) => s?.close()));
    rmSync(work, { recursive: true, force: true });
  });

  test('permissions.json says which permissions the owner granted', async () => {
    const items = await readZip(archive);
    const permissions = JSON.parse(items.find((i) => i.name === 'permissions.json')!.data.toString()) as Array<{ name: string; granted: boolean }>;
    assert.deepEqual(permissions.map((p) => [p.name, p.granted]), [['publish_posts', true]]);
  });

  test('an older archive never undoes what changed here since: newer records and their files stay; a restore asks for the old copy', async () => {
    const token = await source.appToken(USER, APP);
    const auth = { authorization: `Bearer ${token}` };
    const write = async (body: object) => (await source.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, payload: body, headers: auth })).json()._id as string;
    const [edited, removed, same] = [await write({ v: 'old' }), await write({ v: 'gone' }), await write({ v: 'same' })];
    const older = await exportToFile(source);
    await new Promise((r) => setTimeout(r, 5)); // a later millisecond for the edits
    assert.equal((await source.app.inject({ method: 'PUT', url: `/ceps/update/${APP}/${edited}`, payload: { v: 'new' }, headers: auth })).statusCode, 200);
    assert.equal((await source.app.inject({ method: 'DELETE', url: `/ceps/delete/${APP}/${removed}`, headers: auth })).statusCode, 200);
    const newBytes = randomBytes(1000);
    const { body, contentType } = multipart([{ name: 'options', value: '{"fileName":"photo.bin"}' }, { name: 'file', value: newBytes, filename: 'photo.bin' }]);
    assert.equal((await source.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: body, headers: { 'content-type': contentType, ...auth } })).statusCode, 200);
    const read = async (id: string) => source.services.stores.records(USER).get(USER, APP, id);
    const photo = async () => (await source.app.inject({ method: 'GET', url: `/feps/userfiles/${APP}/${USER}/photo.bin`, headers: auth })).rawPayload;
    const editedNow = await read(edited);
    // The app was updated since, too.
    const v2 = mkdtempSync(path.join(tmpdir(), 'freehold-notes-v2-'));
    cpSync(path.join(FIXTURES, APP), v2, { recursive: true });
    const manifestFile = path.join(v2, 'manifest.json');
    writeFileSync(manifestFile, JSON.stringify({ ...JSON.parse(readFileSync(manifestFile, 'utf8')), version: '2.0.0' }));
    await source.services.apps.install(USER, { folder: v2 });
    rmSync(v2, { recursive: true, force: true });

    const merged = await importOwner(source.services, USER, older);
    assert.equal(merged.recordsNewerKept, 3, "the edited record, the re-uploaded file's record and the updated app");
    assert.equal((await source.services.apps.get(USER, APP))?.version, '2.0.0', 'the app is not taken back to the archive\'s version');
    assert.equal(merged.recordsWritten, 1, 'only the deleted record comes back');
    assert.deepEqual(await read(edited), editedNow, 'the newer record stays, dates and all');
    assert.equal((await read(removed))?.v, 'gone');
    assert.equal((await read(same))?.v, 'same');
    assert.deepEqual(await photo(), newBytes, "the newer file's bytes stay");

    const restored = await importOwner(source.services, USER, older, undefined, undefined, { replaceNewer: true });
    assert.equal(restored.recordsNewerKept, 0);
    assert.equal((await source.services.apps.get(USER, APP))?.version, '1.0.0', 'a restore brings the app of then back');
    assert.equal((await read(edited))?.v, 'old');
    assert.notDeepEqual(await photo(), newBytes, 'a restore brings the old bytes back');
    assert.equal((await photo()).length, 200_000);
  });

  test('an owner near their quota imports the same archive twice: the second changes nothing and is not refused', async () => {
    await importOwner(target.services, USER, archive);
    const used = (await target.services.quota.usage(USER)).bytes;
    // Room for far less than the archive's files and app, but for everything that is already here.
    await target.services.quota.setQuota(USER, { bytes: used + 10_000, records: 0 });
    const again = await importOwner(target.services, USER, archive);
    assert.equal(again.recordsWritten + again.blobsWritten + again.appFilesWritten, 0);
  });

  test('concurrent imports of one owner leave one install of each app', async () => {
    const fresh = await startTestServer();
    try {
      await fresh.addUser(USER);
      await Promise.all([1, 2, 3].map(() => importOwner(fresh.services, USER, archive)));
      const installs = new Set<string>();
      for await (const { key } of fresh.services.stores.blobs(USER).list(`${USER}/apps/${APP}`)) installs.add(key.split('/')[3]!);
      assert.equal(installs.size, 1, [...installs].join(', '));
    } finally {
      await fresh.close();
    }
  });

  test("a grant whose fields name another app than its id is refused whole", async () => {
    const items = await readZip(archive);
    const table = 'tables/system.permissions.jsonl';
    const sneaky = { _id: `${APP}/zz_sneaky`, _date_created: 1, _date_modified: 1, requestor_app: 'com.future.app', name: 'publish_posts', granted: true };
    const patched = items.map((i) => i.name === table ? { ...i, data: Buffer.concat([i.data, Buffer.from(`${JSON.stringify(sneaky)}\n`)]) } : i);
    const fresh = await startTestServer();
    try {
      await fresh.addUser(USER);
      await assert.rejects(importOwner(fresh.services, USER, await writeZip(patched, { manifest: 'recompute' })), /a grant's requestor_app and name must be those of its _id/);
      assert.deepEqual(await fresh.services.stores.records(USER).listTables(USER), [], 'nothing written');
      // A decision must be one: `granted` true or false, nothing in between.
      const vague = { _id: `${APP}/zz_vague`, _date_created: 1, _date_modified: 1, requestor_app: APP, name: 'zz_vague', granted: 'yes' };
      const patched2 = items.map((i) => i.name === table ? { ...i, data: Buffer.concat([i.data, Buffer.from(`${JSON.stringify(vague)}\n`)]) } : i);
      await assert.rejects(importOwner(fresh.services, USER, await writeZip(patched2, { manifest: 'recompute' })), /a grant's granted must be true or false/);
      assert.deepEqual(await fresh.services.stores.records(USER).listTables(USER), [], 'nothing written');
    } finally {
      await fresh.close();
    }
  });

  test('whatever the server stored imports again: 20,000 client fields, and a record merges grew past that', async () => {
    const fresh = await startTestServer();
    const other = await startTestServer();
    try {
      await fresh.addUser(USER);
      await other.addUser(USER);
      const token = await fresh.appToken(USER, APP);
      const auth = { authorization: `Bearer ${token}` };
      const fields = (from: number, n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${from + i}`, 1]));
      assert.equal((await fresh.app.inject({ method: 'POST', url: `/feps/write/${APP}.edge/exact`, headers: auth, payload: fields(0, 20_000) })).statusCode, 200);
      assert.equal((await fresh.app.inject({ method: 'POST', url: `/feps/write/${APP}.edge/merged`, headers: auth, payload: fields(0, 15_000) })).statusCode, 200);
      assert.equal((await fresh.app.inject({ method: 'PUT', url: `/feps/update/${APP}.edge/merged`, headers: auth, payload: fields(15_000, 15_000) })).statusCode, 200);
      const r = await importOwner(other.services, USER, await exportToFile(fresh));
      assert.equal(r.tables[`${APP}.edge`], 2);
      const merged = await other.services.stores.records(USER).get(USER, `${APP}.edge`, 'merged');
      assert.equal(Object.keys(merged!).length, 30_003);
    } finally {
      await Promise.all([fresh.close(), other.close()]);
    }
  });

  test("a grant for an app the archive does not bring is not imported, so a later install of that name gets nothing", async () => {
    const items = await readZip(archive);
    const table = 'tables/system.permissions.jsonl';
    const grants = items.find((i) => i.name === table)!;
    const orphan = { _id: 'com.example.hostile/exfil', _date_created: 1, _date_modified: 1, requestor_app: 'com.example.hostile', name: 'exfil', granted: true };
    // Ids sorted: the hostile app's grant goes before the notes app's.
    const patched = items.map((i) => i === grants ? { ...i, data: Buffer.concat([Buffer.from(`${JSON.stringify(orphan)}\n`), i.data]) } : i);
    const fresh = await startTestServer();
    try {
      await fresh.addUser(USER);
      const r = await importOwner(fresh.services, USER, await writeZip(patched, { manifest: 'recompute' }));
      assert.equal(r.recordsSkipped, 1);
      assert.equal(await fresh.services.permissions.isGranted(USER, APP, 'publish_posts'), true, 'the archive app\'s grant came along');
      await fresh.services.apps.install(USER, { folder: path.join(FIXTURES, 'com.example.hostile') });
      const hostile = await fresh.services.permissions.list(USER, 'com.example.hostile');
      assert.ok(hostile.length > 0 && hostile.every((p) => !p.granted), JSON.stringify(hostile));
    } finally {
      await fresh.close();
    }
  });
});
