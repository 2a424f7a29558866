import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readdirSync, readFileSync, writeFileSync, existsSync, utimesSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../../src/storage/fs/blob-store.js';
import { openBlobStore, openRecordStore } from '../../src/storage/urls.js';
import { blobStoreSuite } from './blob-store.suite.js';
import { runChildScript } from '../helpers/child-script.js';

const dir = mkdtempSync(join(tmpdir(), 'freehold-fs-'));
let n = 0;
after(() => rmSync(dir, { recursive: true, force: true }));

blobStoreSuite('fs', async () => new FsBlobStore(join(dir, `s${n++}`)));

test('fs: blobs are plain files; sidecars and temp files stay out of listings', async () => {
  const root = join(dir, 'layout');
  const s = new FsBlobStore(root);
  await s.init();
  await s.put('alice/app/x.txt', Buffer.from('plain'), { contentType: 'text/plain' });
  assert.equal(readFileSync(join(root, 'blobs/alice/app/x.txt'), 'utf8'), 'plain');
  assert.deepEqual(readdirSync(join(root, 'blobs/alice/app')), ['x.txt'], 'no temp files left behind');
  writeFileSync(join(root, 'blobs/alice/app/.tmp-leftover'), 'crash debris');
  const listed: string[] = [];
  for await (const e of s.list('')) listed.push(e.key);
  assert.deepEqual(listed, ['alice/app/x.txt']);
  await assert.rejects(s.put('alice/.tmp-x', Buffer.from('x')), /tmp/);
});

test('fs: temp files a killed write left are swept once old, in both trees; young ones and blobs stay', async () => {
  const root = join(dir, 'leftovers');
  const s = new FsBlobStore(root);
  await s.init();
  await s.put('alice/app/x.txt', Buffer.from('kept'));
  const old = Date.now() / 1000 - 7200;
  for (const f of ['blobs/alice/app/.tmp-killed', 'meta/alice/app/.tmp-killed']) {
    writeFileSync(join(root, f), 'half a write');
    utimesSync(join(root, f), old, old);
  }
  writeFileSync(join(root, 'blobs/alice/app/.tmp-young'), 'a write under way');
  assert.equal(await s.sweepLeftovers(3600_000), 2);
  assert.deepEqual(readdirSync(join(root, 'blobs/alice/app')).sort(), ['.tmp-young', 'x.txt']);
  assert.deepEqual(readdirSync(join(root, 'meta/alice/app')), ['x.txt']);
  assert.equal(readFileSync(join(root, 'blobs/alice/app/x.txt'), 'utf8'), 'kept');
});

test('fs: head repairs a sidecar that no longer matches its blob', async () => {
  const root = join(dir, 'repair');
  const s = new FsBlobStore(root);
  await s.init();
  await s.put('k/file', Buffer.from('one'), { contentType: 'text/plain' });
  // An outside edit (or a restore from a copy) replaces the file behind the store's back.
  rmSync(join(root, 'blobs/k/file'));
  writeFileSync(join(root, 'blobs/k/file'), 'two!');
  const h = await s.head('k/file');
  assert.equal(h!.etag, createHash('sha256').update('two!').digest('hex'));
  assert.equal(h!.size, 4);
  assert.equal(h!.contentType, 'text/plain');
  // A blob with no sidecar at all still gets a real hash.
  writeFileSync(join(root, 'blobs/k/orphan'), 'o');
  assert.equal((await s.head('k/orphan'))!.etag, createHash('sha256').update('o').digest('hex'));
  assert.ok(existsSync(join(root, 'meta/k/orphan')));
});

test('fs: a key cannot be both a blob and a folder', async () => {
  const s = new FsBlobStore(join(dir, 'clash'));
  await s.init();
  await s.put('a/b', Buffer.from('file'));
  await assert.rejects(s.put('a/b/c', Buffer.from('x')), /conflicts/);
  await assert.rejects(s.put('a', Buffer.from('x')), /conflicts/);
  assert.equal((await s.head('a/b'))!.size, 4);
});

test('store URLs', async () => {
  assert.equal(openRecordStore('sqlite::memory:').kind, 'sqlite');
  assert.equal(openRecordStore(`sqlite:${join(dir, 'u.db')}`).kind, 'sqlite');
  assert.equal(openBlobStore(`fs:${join(dir, 'u')}`).kind, 'fs');
  assert.throws(() => openRecordStore('mongodb://x'), /sqlite:<path>/);
  assert.throws(() => openRecordStore('sqlite:'), /path/);
  assert.throws(() => openRecordStore('./plain/path'), /Unsupported/);
  assert.throws(() => openBlobStore('ftp://x'), /fs:<path>/);
  assert.throws(() => openBlobStore('fs:'), /directory/);
});

test('fs: a named pipe under a blob\'s or a sidecar\'s name is no blob, and holds nothing up', async () => {
  const root = join(dir, 'pipes');
  const s = new FsBlobStore(root);
  await s.init();
  await s.put('k/a', Buffer.from('one'), { contentType: 'text/plain' });
  await s.put('k/b', Buffer.from('two'), { contentType: 'text/plain' });
  rmSync(join(root, 'blobs/k/a'));
  rmSync(join(root, 'meta/k/b'), { recursive: true, force: true });
  execFileSync('mkfifo', [join(root, 'blobs/k/a'), join(root, 'meta/k/b')]);
  // In a child process with a time limit: a blocked open holds a thread-pool thread, and
  // with it this test process, forever.
  const script = `
    import { FsBlobStore } from './src/storage/fs/blob-store.ts';
    const s = new FsBlobStore(${JSON.stringify(root)});
    await s.init();
    const got = await s.get('k/a');
    const head = await s.head('k/a');
    const repaired = await s.head('k/b');
    const chunks = [];
    for await (const c of (await s.get('k/b'))) chunks.push(c);
    console.log(JSON.stringify({ got, head, repaired, b: Buffer.concat(chunks).toString() }));
  `;
  const out = runChildScript<{ got: unknown; head: unknown; repaired: { etag: string; contentType?: string }; b: string }>(script, 'the store hung on a pipe');
  assert.equal(out.got, null);
  assert.equal(out.head, null);
  assert.equal(out.repaired.etag, createHash('sha256').update('two').digest('hex'), 'the sidecar is made again from the blob');
  assert.equal(out.b, 'two');
});
