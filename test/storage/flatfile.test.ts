import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, closeSync, constants as fsConstants, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, open as openCb, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FreeholdError } from '../../src/core/errors.js';
import { validateQuery } from '../../src/query/validate.js';
import { FlatFileRecordStore } from '../../src/storage/flatfile/record-store.js';
import { frameEntry, readJournals } from '../../src/storage/flatfile/journal.js';
import { FlatFilePaths, decodeSegment, encodeSegment } from '../../src/storage/flatfile/paths.js';
import type { StoredRecord } from '../../src/storage/types.js';
import { openRecordStore } from '../../src/storage/urls.js';
import { recordStoreSuite } from './record-store.suite.js';
import { runChildScript } from '../helpers/child-script.js';
import { until } from '../helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'freehold-flatfile-'));
let n = 0;
after(() => rmSync(dir, { recursive: true, force: true }));

recordStoreSuite('flatfile', async () => new FlatFileRecordStore(join(dir, `t${n++}`)));

const O = 'alice';
const T = 'com.example.notes';
const rec = (id: string, fields: Record<string, unknown> = {}, created = 1000): StoredRecord => ({ _id: id, _date_created: created, _date_modified: created, ...fields });
const all = { op: 'true' } as const;
const byId = { sort: [{ path: ['_id'], direction: 1 as const }], skip: 0, limit: 1000 };

async function open(root: string): Promise<FlatFileRecordStore> {
  const s = new FlatFileRecordStore(root);
  await s.init();
  return s;
}

function fresh(): string {
  return join(dir, `x${n++}`);
}

const badRequest = (e: unknown) => e instanceof FreeholdError && e.code === 'bad_request';

test('flatfile: records are pretty JSON files at <root>/<owner>/<table>/<id>.json, changes are JSON lines', async () => {
  const root = fresh();
  const s = await open(root);
  const r = rec('r1', { title: 'hello', tags: ['a', 'b'] });
  await s.create(O, T, r);
  await s.put(O, T, { ...r, title: 'again' });
  await s.delete(O, T, 'r1');
  await s.create(O, T, r);

  const file = join(root, O, T, 'r1.json');
  assert.equal(readFileSync(file, 'utf8'), JSON.stringify(r, null, 2) + '\n');
  assert.equal((statSync(file).mode & 0o777).toString(8), '600', 'owner data is private');

  const lines = readFileSync(join(root, O, '_changes.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { seq: number; op: string });
  assert.deepEqual(lines.map((l) => `${l.seq}:${l.op}`), ['1:put', '2:put', '3:delete', '4:put']);
  assert.deepEqual(await s.changes(O, 0, 10), lines);
  await s.close();
  // The replaced and deleted files' temp names are unlinked in the background (retire, record-store.ts); close waits for that.
  assert.deepEqual(readdirSync(join(root, O, T)), ['r1.json'], 'no temp files left behind');
  assert.equal(readFileSync(join(root, O, '_journal.json'), 'utf8') + readFileSync(join(root, O, '_journal2.json'), 'utf8'), '', 'a clean close leaves the journal empty');

  // The seq continues after a restart.
  const s2 = await open(root);
  await s2.put(O, T, rec('r2'));
  assert.deepEqual((await s2.changes(O, 3, 10)).map((c) => c.seq), [4, 5]);
  await s2.close();
});

test('flatfile: a replaced or deleted record file is freed in the background; a hard link made by hand keeps the old text', async () => {
  const root = fresh();
  const s = await open(root);
  const tableDir = join(root, O, T);
  await s.create(O, T, rec('a', { v: 1 }));
  await s.create(O, T, rec('b', { v: 1 }));
  await s.create(O, T, rec('c', { v: 1 }));
  const oldA = readFileSync(join(tableDir, 'a.json'), 'utf8');
  const oldB = readFileSync(join(tableDir, 'b.json'), 'utf8');
  // A backup made with hard links (cp -al, rsnapshot) shares the record files' inodes.
  mkdirSync(join(root, 'backup'));
  linkSync(join(tableDir, 'a.json'), join(root, 'backup', 'a.json'));
  linkSync(join(tableDir, 'b.json'), join(root, 'backup', 'b.json'));

  await s.batch(O, [
    { kind: 'put', table: T, record: rec('a', { v: 2 }) },
    { kind: 'delete', table: T, id: 'b' },
    { kind: 'put', table: T, record: rec('c', { v: 2 }) },
  ]);
  assert.deepEqual(await s.get(O, T, 'a'), rec('a', { v: 2 }));
  assert.equal(await s.get(O, T, 'b'), null);
  assert.deepEqual(await s.get(O, T, 'c'), rec('c', { v: 2 }));
  assert.deepEqual((await s.query(O, T, all, byId)).map((r) => r._id), ['a', 'c'], 'temp names are not records');
  assert.equal(readFileSync(join(root, 'backup', 'a.json'), 'utf8'), oldA, 'the backup keeps the text it had');
  assert.equal(readFileSync(join(root, 'backup', 'b.json'), 'utf8'), oldB);
  assert.equal(statSync(join(tableDir, 'a.json')).nlink, 1, 'the new file is the record\'s own');

  await s.close();
  assert.deepEqual(readdirSync(tableDir).sort(), ['a.json', 'c.json'], 'every retired name is gone once the store is closed');
  assert.equal(statSync(join(root, 'backup', 'a.json')).nlink, 1);
  assert.equal(statSync(join(root, 'backup', 'b.json')).nlink, 1);
});

test('flatfile: edits made by hand are seen by the next get and query', async () => {
  const root = fresh();
  const s = await open(root);
  for (const id of ['a', 'b', 'c']) await s.create(O, T, rec(id, { title: `note ${id}` }));
  const titles = async () => (await s.query(O, T, all, byId)).map((r) => `${r._id}:${String(r.title)}`);
  assert.deepEqual(await titles(), ['a:note a', 'b:note b', 'c:note c']); // now cached

  // In place (as `vi` or `sed -i`-less tools do), immediately: same directory mtime tick.
  writeFileSync(join(root, O, T, 'a.json'), JSON.stringify(rec('a', { title: 'edited by hand' }), null, 2));
  assert.equal((await s.get(O, T, 'a'))!.title, 'edited by hand');
  assert.deepEqual(await titles(), ['a:edited by hand', 'b:note b', 'c:note c']);
  // Same size, same tick: only the racy-timestamp rule catches this one.
  writeFileSync(join(root, O, T, 'b.json'), JSON.stringify(rec('b', { title: 'note B' }), null, 2) + '\n');
  assert.deepEqual(await titles(), ['a:edited by hand', 'b:note B', 'c:note c']);

  // Added and removed by hand.
  writeFileSync(join(root, O, T, 'd.json'), JSON.stringify(rec('d', { title: 'new' })));
  unlinkSync(join(root, O, T, 'c.json'));
  assert.deepEqual(await titles(), ['a:edited by hand', 'b:note B', 'd:new']);
  assert.equal(await s.count(O, T, validateQuery({ title: 'new' }).where), 1);
  assert.deepEqual(await s.listTables(O), [{ table: T, count: 3 }]);

  // Files that are not canonical record names are not records.
  for (const name of ['a.json~', '.a.json.swp', 'a copy.json', 'README.txt', '%61.json']) writeFileSync(join(root, O, T, name), 'junk');
  assert.deepEqual((await s.query(O, T, all, byId)).map((r) => r._id), ['a', 'b', 'd']);

  // A broken hand edit is reported with the file's path rather than silently skipped.
  writeFileSync(join(root, O, T, 'b.json'), '{ "_id": "b", oops');
  await assert.rejects(s.query(O, T, all, byId), /b\.json is not valid JSON/);
  await assert.rejects(s.get(O, T, 'b'), /b\.json is not valid JSON/);
  await s.put(O, T, rec('b', { title: 'repaired' })); // a put may replace it
  assert.equal((await s.get(O, T, 'b'))!.title, 'repaired');
  writeFileSync(join(root, O, T, 'b.json'), JSON.stringify(rec('renamed')));
  await assert.rejects(s.query(O, T, all, byId), /holds _id "renamed", but its name says "b"/);
  await assert.rejects(s.get(O, T, 'b'), /holds _id "renamed"/);
  await s.close();
});

/** What a crash leaves in a journal file: framed entries, as the store appends them. */
function journalEntry(entry: Record<string, unknown>): Buffer {
  return frameEntry(JSON.stringify({ version: 2, ...entry }));
}

test('flatfile: a committed batch the crash cut short is rolled forward at the next open', async () => {
  const root = fresh();
  const s = await open(root);
  await s.create(O, T, rec('keep', { v: 1 }));
  await s.create(O, T, rec('old', { v: 1 }));
  await s.close();
  const changesFile = join(root, O, '_changes.jsonl');
  const changesBefore = readFileSync(changesFile, 'utf8');
  const text = (r: StoredRecord) => JSON.stringify(r, null, 2) + '\n';

  // What the store leaves when killed halfway through applying a committed (journalled)
  //   batch [create new1, put old {v:2}, delete keep]:
  // new1 in place, old not yet replaced, keep not yet deleted, one change line torn.
  const at = Date.now();
  const changes = [
    { seq: 3, table: T, id: 'new1', op: 'put', at },
    { seq: 4, table: T, id: 'old', op: 'put', at },
    { seq: 5, table: T, id: 'keep', op: 'delete', at },
  ];
  writeFileSync(join(root, O, '_journal2.json'), journalEntry({
    kind: 'write', changesOffset: Buffer.byteLength(changesBefore), seqBefore: 2, changes,
    writes: [{ table: T, id: 'new1', text: text(rec('new1')) }, { table: T, id: 'old', text: text(rec('old', { v: 2 })) }, { table: T, id: 'keep', text: null }],
    before: [{ table: T, id: 'new1', text: null }, { table: T, id: 'old', text: text(rec('old', { v: 1 })) }, { table: T, id: 'keep', text: text(rec('keep', { v: 1 })) }],
  }));
  writeFileSync(join(root, O, T, 'new1.json'), text(rec('new1')));
  appendFileSync(changesFile, JSON.stringify(changes[0]) + '\n{"seq":4,"ta'); // torn mid-line
  writeFileSync(join(root, O, T, '.tmp-old.json-0123456789ab'), 'temp file');

  const s2 = await open(root);
  assert.deepEqual(await s2.get(O, T, 'new1'), rec('new1'));
  assert.deepEqual(await s2.get(O, T, 'old'), rec('old', { v: 2 }));
  assert.equal(await s2.get(O, T, 'keep'), null);
  assert.equal(readFileSync(changesFile, 'utf8'), changesBefore + changes.map((c) => JSON.stringify(c) + '\n').join(''), 'the change lines are written again, whole');
  assert.equal(readFileSync(join(root, O, '_journal.json'), 'utf8') + readFileSync(join(root, O, '_journal2.json'), 'utf8'), '');
  assert.deepEqual(readdirSync(join(root, O, T)).sort(), ['new1.json', 'old.json'], 'temp files are cleaned up');
  await s2.put(O, T, rec('next'));
  assert.deepEqual((await s2.changes(O, 0, 10)).map((c) => `${c.seq}:${c.id}`), ['1:keep', '2:old', '3:new1', '4:old', '5:keep', '6:next']);
  await s2.close();
});

test('flatfile: roll-forward after a power loss: lost renames and lost data are redone, hand edits made since are kept', async () => {
  const root = fresh();
  const s = await open(root);
  for (const id of ['a', 'b', 'c', 'd', 'e', 'f']) await s.create(O, T, rec(id, { v: 1 }));
  await s.close();
  const changesFile = join(root, O, '_changes.jsonl');
  const offset = statSync(changesFile).size;
  const text = (r: StoredRecord) => JSON.stringify(r, null, 2) + '\n';
  const at = Date.now();
  const put = (id: string, seq: number, v: number) => ({
    kind: 'write', changesOffset: offset + (seq - 7) * 10_000, seqBefore: seq - 1, changes: [{ seq, table: T, id, op: 'put', at }],
    writes: [{ table: T, id, text: text(rec(id, { v })) }], before: [{ table: T, id, text: text(rec(id, { v: v - 1 })) }],
  });
  // Two units for a (v2, v3); one each for b, c, d. Only the first unit's offset is used, so the others' do not matter.
  const entries = [put('a', 7, 2), put('b', 8, 2), put('a', 9, 3), put('c', 10, 2), put('d', 11, 2), put('e', 12, 2), put('f', 13, 2)];
  writeFileSync(join(root, O, '_journal.json'), Buffer.concat(entries.map(journalEntry)));
  appendFileSync(join(root, O, '_journal.json'), '{"bytes":999,"sha256":"00"}\n{"version":2,"ki'); // torn: never acknowledged
  // a: still its checkpointed text (both renames lost). b: emptied (rename kept, data lost).
  // c: edited by hand after its write. d: its intermediate text (v2 written, all fine).
  writeFileSync(join(root, O, T, 'b.json'), '');
  writeFileSync(join(root, O, T, 'c.json'), text(rec('c', { v: 'by hand' })));
  writeFileSync(join(root, O, T, 'd.json'), text(rec('d', { v: 2 })));
  // e: its new text with its second half never written (zeros). f: its new text cut short (size not kept).
  const e2 = text(rec('e', { v: 2 }));
  writeFileSync(join(root, O, T, 'e.json'), e2.slice(0, 20) + '\0'.repeat(e2.length - 20));
  writeFileSync(join(root, O, T, 'f.json'), text(rec('f', { v: 2 })).slice(0, 25));

  const s2 = await open(root);
  assert.deepEqual(await s2.get(O, T, 'a'), rec('a', { v: 3 }));
  assert.deepEqual(await s2.get(O, T, 'b'), rec('b', { v: 2 }));
  assert.deepEqual(await s2.get(O, T, 'c'), rec('c', { v: 'by hand' }), 'a hand edit made after the write is not clobbered');
  assert.deepEqual(await s2.get(O, T, 'd'), rec('d', { v: 2 }));
  assert.deepEqual(await s2.get(O, T, 'e'), rec('e', { v: 2 }), 'a text with unwritten pages (NUL bytes) is no hand edit');
  assert.deepEqual(await s2.get(O, T, 'f'), rec('f', { v: 2 }), 'a journalled text cut short is no hand edit');
  assert.deepEqual((await s2.changes(O, 0, 20)).map((c) => `${c.seq}:${c.id}`),
    ['1:a', '2:b', '3:c', '4:d', '5:e', '6:f', '7:a', '8:b', '9:a', '10:c', '11:d', '12:e', '13:f']);
  await s2.close();
});

test('flatfile: a torn journal entry (crash while appending it) is discarded; nothing had been applied', async () => {
  const root = fresh();
  const s = await open(root);
  await s.create(O, T, rec('a'));
  await s.close();
  writeFileSync(join(root, O, '_journal.json'), journalEntry({ kind: 'write', changesOffset: 0, seqBefore: 1, changes: [], writes: [], before: [] }).subarray(0, 40));
  const s2 = await open(root);
  assert.deepEqual(await s2.get(O, T, 'a'), rec('a'));
  assert.equal((await s2.changes(O, 0, 10)).length, 1);
  assert.equal(readFileSync(join(root, O, '_journal.json'), 'utf8'), '');
  await s2.close();
});

test('flatfile: a journal left by freehold before roll-forward (version 1) is still rolled back', async () => {
  const root = fresh();
  const s = await open(root);
  await s.create(O, T, rec('old', { v: 1 }));
  await s.close();
  const changesFile = join(root, O, '_changes.jsonl');
  const changesBefore = readFileSync(changesFile, 'utf8');
  const at = Date.now();
  const body = JSON.stringify({
    version: 1, kind: 'write', changesOffset: Buffer.byteLength(changesBefore), seqBefore: 1,
    changes: [{ seq: 2, table: T, id: 'old', op: 'put', at }, { seq: 3, table: T, id: 'new1', op: 'put', at }],
    writes: [{ table: T, id: 'old', record: rec('old', { v: 2 }) }, { table: T, id: 'new1', record: rec('new1') }],
    before: [{ table: T, id: 'old', record: rec('old', { v: 1 }) }, { table: T, id: 'new1', record: null }],
  }) + '\n';
  const { createHash } = await import('node:crypto');
  const trailer = JSON.stringify({ bytes: Buffer.byteLength(body), sha256: createHash('sha256').update(body).digest('hex') }) + '\n';
  writeFileSync(join(root, O, '_journal.json'), body + trailer);
  writeFileSync(join(root, O, T, 'old.json'), JSON.stringify(rec('old', { v: 2 }), null, 2));
  writeFileSync(join(root, O, T, 'new1.json'), JSON.stringify(rec('new1'), null, 2));
  appendFileSync(changesFile, '{"seq":2,"table":"x","id":"old","op":"put","at":1}\n');
  const s2 = await open(root);
  assert.deepEqual(await s2.get(O, T, 'old'), rec('old', { v: 1 }));
  assert.equal(await s2.get(O, T, 'new1'), null);
  assert.equal(readFileSync(changesFile, 'utf8'), changesBefore);
  assert.equal(readFileSync(join(root, O, '_journal.json'), 'utf8'), '');
  await s2.close();
});

test('flatfile: a committed dropTable the crash cut short is rolled forward at the next open', async () => {
  const root = fresh();
  const s = await open(root);
  await s.create(O, T, rec('a'));
  await s.create(O, T, rec('b'));
  await s.close();
  const changesFile = join(root, O, '_changes.jsonl');
  const size = statSync(changesFile).size;
  const at = Date.now();
  const changes = [{ seq: 3, table: T, id: 'a', op: 'delete', at }, { seq: 4, table: T, id: 'b', op: 'delete', at }];
  writeFileSync(join(root, O, '_journal.json'), journalEntry({ kind: 'drop', table: T, trash: '.trash-0001', changesOffset: size, seqBefore: 2, changes }));
  // Killed before the table was moved aside.
  const s2 = await open(root);
  assert.deepEqual(await s2.query(O, T, all, byId), []);
  assert.equal(existsSync(join(root, O, '.trash-0001')), false, 'the trash is removed');
  assert.equal(existsSync(join(root, O, T)), false);
  assert.deepEqual((await s2.changes(O, 0, 10)).map((c) => `${c.seq}:${c.op}`), ['1:put', '2:put', '3:delete', '4:delete']);
  await s2.create(O, T, rec('c'));
  assert.equal(await s2.dropTable(O, T), 1);
  assert.deepEqual(readdirSync(join(root, O)).sort(), ['_changes.jsonl', '_journal.json', '_journal2.json'], 'no trash left');
  await s2.close();
});

/**
 * Holds every thread of libuv's pool (where the journal's fdatasync runs) in an open()
 * of a named pipe without a writer, until `release` opens the other end of each.
 */
function holdThreadPool(root: string): { release: () => Promise<void> } {
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const pipes = Array.from({ length: threads }, (_, i) => join(root, `pool-${i}`));
  execFileSync('mkfifo', pipes);
  const opened = pipes.map((p) => new Promise<number>((resolve, reject) => openCb(p, 'r', (e, fd) => (e ? reject(e) : resolve(fd)))));
  return {
    release: async () => {
      for (const p of pipes) closeSync(openSync(p, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK));
      for (const fd of await Promise.all(opened)) closeSync(fd);
    },
  };
}

test('flatfile: a batch failing while being applied is undone in place', async () => {
  const root = fresh();
  const s = await open(root);
  await s.create(O, T, rec('a', { v: 1 }));
  const changes = readFileSync(join(root, O, '_changes.jsonl'), 'utf8');
  const journals = [join(root, O, '_journal.json'), join(root, O, '_journal2.json')];
  const journalled = () => journals.reduce((n, f) => n + (existsSync(f) ? statSync(f).size : 0), 0);
  const before = journalled();
  // The unit stops between its journal write and the fdatasync that commits it, the one
  // moment a hand change (or a disk error) can still make applying fail after planning.
  const pool = holdThreadPool(root);
  let batch: Promise<void>;
  try {
    batch = s.batch(O, [
      { kind: 'put', table: T, record: rec('a', { v: 2 }) },
      { kind: 'create', table: T, record: rec('b') },
      { kind: 'put', table: 'com.example.other', record: rec('x') },
    ]);
    batch.catch(() => {}); // judged below
    await until('the unit has written its journal entry', () => journalled() > before, 15_000);
    // A folder put in record x's place after planning: linking x into place fails, after a and b.
    mkdirSync(join(root, O, 'com.example.other', 'x.json'), { recursive: true });
  } finally {
    await pool.release();
  }
  await assert.rejects(
    batch,
    (e: unknown) => e instanceof FreeholdError && e.code === 'conflict' && /not a record file holds the name of id x in com\.example\.other/.test(e.message),
  );
  assert.deepEqual(await s.get(O, T, 'a'), rec('a', { v: 1 }));
  assert.equal(await s.get(O, T, 'b'), null);
  assert.equal(readFileSync(join(root, O, '_changes.jsonl'), 'utf8'), changes);
  const { entries } = await readJournals(new FlatFilePaths(root), O);
  assert.ok(entries.every((e) => e.changes.every((c) => c.seq === 1)), 'the failed unit\'s entry was taken back off the journal: it is never rolled forward');
  await s.put(O, T, rec('c'));
  assert.deepEqual((await s.changes(O, 0, 10)).map((c) => `${c.seq}:${c.id}`), ['1:a', '2:c']);
  await s.close();
});

test('flatfile: a folder, symlink, pipe or socket holding a record\'s name refuses only the writes of that record', async () => {
  const root = fresh();
  const s = await open(root);
  await s.create(O, T, rec('a'));
  const at = (id: string) => join(root, O, T, `${id}.json`);
  mkdirSync(at('d'));
  symlinkSync(at('a'), at('l'));
  execFileSync('mkfifo', [at('p')]);
  const socket = createServer();
  await new Promise<void>((resolve) => socket.listen(at('s'), resolve));
  try {
    // Issued together, so they share one unit: the refusals are decided while planning.
    const [d, l, p, sk, inBatch, other] = await Promise.allSettled([
      s.create(O, T, rec('d')),
      s.put(O, T, rec('l')),
      s.put(O, T, rec('p')),
      s.create(O, T, rec('s')),
      s.batch(O, [{ kind: 'put', table: T, record: rec('c') }, { kind: 'put', table: T, record: rec('d') }]),
      s.create(O, T, rec('b')),
    ]);
    for (const [id, r] of [['d', d], ['l', l], ['p', p], ['s', sk], ['d', inBatch]] as const) {
      assert.equal(r.status, 'rejected', id);
      const e = (r as PromiseRejectedResult).reason as FreeholdError;
      assert.equal(e.code, 'conflict', id);
      assert.match(e.message, new RegExp(`not a record file holds the name of id ${id} in com\\.example\\.notes`), id);
    }
    assert.equal(other.status, 'fulfilled', 'a write of another record in the same unit is not affected');
    assert.deepEqual((await s.query(O, T, all, byId)).map((r) => r._id), ['a', 'b'], 'the batch failed whole');
    for (const id of ['d', 'l', 'p', 's']) {
      assert.equal(await s.get(O, T, id), null, `${id} reads as no record`);
      assert.equal(await s.delete(O, T, id), null, `${id}: a delete finds no record`);
    }
    assert.ok(statSync(at('d')).isDirectory());
    assert.ok(lstatSync(at('l')).isSymbolicLink());
    assert.ok(statSync(at('p')).isFIFO());
    assert.ok(statSync(at('s')).isSocket());
  } finally {
    socket.close();
    await s.close();
  }
});

test('flatfile: unusual ids, owners and tables round-trip through reversible file names', async () => {
  const root = fresh();
  const s = await open(root);
  const ids = ['.', '..', '.hidden', 'a b', 'é', '😀', '%41', '100%', 'x:y@z+=~-_.', '_under', 'CON', 'a'.repeat(200), 'tab\there', 'new\nline', 'q"uote', '*?<>|', 'sub/dir/f.txt', 'app/perm', 'a\\b'];
  for (const id of ids) await s.create(O, T, rec(id, { id }));
  for (const id of ids) assert.deepEqual(await s.get(O, T, id), rec(id, { id }), `get ${JSON.stringify(id)}`);
  const listed = (await s.query(O, T, all, byId)).map((r) => r._id);
  assert.deepEqual([...listed].sort(), [...ids].sort());
  assert.deepEqual(await s.listTables(O), [{ table: T, count: ids.length }]);

  const files = readdirSync(join(root, O, T));
  for (const f of ['%2E.json', '%2E..json', '%2Ehidden.json', 'a%20b.json', '%C3%A9.json', '%2541.json', 'x:y@z+=~-_..json', '_under.json', 'CON.json', 'sub%2Fdir%2Ff.txt.json', 'a%5Cb.json']) {
    assert.ok(files.includes(f), `${f} in ${files.join(' ')}`);
  }
  for (const id of ids) assert.equal(decodeSegment(encodeSegment(id, 'id'), 'id'), id);

  // Owners and tables are escaped too, and `_`-names are reserved for the store's own files.
  for (const [owner, table] of [['_changes.jsonl', '_journal.json'], ['_lock.json', 'com.x'], ['..', '..'], ['.', 'com.x'], ['Zoë', 'com.x.ü']]) {
    await s.put(owner!, table!, rec('r'));
    assert.deepEqual(await s.get(owner!, table!, 'r'), rec('r'));
    assert.deepEqual(await s.listTables(owner!), [{ table: table!, count: 1 }]);
  }
  // `_lock.json` is the store's own (root-lock.ts); an owner of that name is a folder beside it.
  assert.deepEqual(readdirSync(root).sort(), ['%2E', '%2E.', '%5Fchanges.jsonl', '%5Flock.json', 'Zo%C3%AB', '_lock.json', 'alice']);

  for (const bad of ['a/b', 'a\\b', 'nul\0', '', 'x'.repeat(300), 'lone\uD800']) {
    if (!bad.includes('/') && !bad.includes('\\')) await assert.rejects(s.create(O, T, rec(bad)), badRequest, `id ${JSON.stringify(bad)}`);
    await assert.rejects(s.get(bad, T, 'r'), badRequest, `owner ${JSON.stringify(bad)}`);
    await assert.rejects(s.query(O, bad, all, byId), badRequest, `table ${JSON.stringify(bad)}`);
  }
  await s.close();
});

test('flatfile: no owner, table or id reaches outside the root', async () => {
  const parent = fresh();
  const root = join(parent, 'root');
  mkdirSync(parent);
  const s = await open(root);
  const nasty = ['..', '../..', '../../etc/passwd', '/etc/passwd', '..\\..', '.', '%2E%2E', '%2F', 'C:\\x'];
  for (const x of nasty) {
    await s.put(x, T, rec('r')).catch(() => {});
    await s.put(O, x, rec('r')).catch(() => {});
    await s.put(O, T, rec(x)).catch(() => {});
    await s.batch(O, [{ kind: 'delete', table: x, id: x }]).catch(() => {});
    await s.dropTable(x, x).catch(() => {});
  }
  assert.deepEqual(readdirSync(parent), ['root'], 'nothing written beside the root');
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
  for (const f of walk(root)) assert.ok(f.startsWith(root + '/'), f);
  await s.close();
});

test('flatfile: reading changes from the middle of a long log', async () => {
  const root = fresh();
  const s = await open(root);
  const ops = Array.from({ length: 1000 }, (_, i) => ({ kind: 'put' as const, table: T, record: rec(`r${i}`) }));
  await s.batch(O, ops);
  assert.deepEqual((await s.changes(O, 700, 3)).map((c) => c.seq), [701, 702, 703]);
  await s.batch(O, ops.slice(0, 600)); // appended after the index was built
  assert.deepEqual((await s.changes(O, 1299, 3)).map((c) => `${c.seq}:${c.id}`), ['1300:r299', '1301:r300', '1302:r301']);
  assert.deepEqual((await s.changes(O, 1598, 10)).map((c) => c.seq), [1599, 1600]);
  assert.equal((await s.changes(O, 0, 5000)).length, 1600);
  assert.deepEqual(await s.changes(O, 1600, 10), []);
  await s.close();
});

test('flatfile: flatfile:<dir> store URL', async () => {
  const root = fresh();
  const s = openRecordStore(`flatfile:${root}`);
  assert.equal(s.kind, 'flatfile');
  await s.init();
  await s.create(O, T, rec('u'));
  assert.ok(existsSync(join(root, O, T, 'u.json')));
  await s.close();
  assert.throws(() => openRecordStore('flatfile:'), /needs a directory/);
});

test('flatfile update: rebuilt inside the unit from the current file; a broken or foreign file is left to the general path', async () => {
  const root = fresh();
  const s = await open(root);
  try {
    await s.put(O, T, rec('a', { title: 'old' }));
    const change = (title: string) => ({
      fields: { title }, keep: 'all' as const, modified: 5000, maxBytes: 1000,
      build: (old: StoredRecord): StoredRecord => ({ ...old, title, _date_modified: 5000 }),
    });
    assert.deepEqual(await s.update(O, T, 'a', change('new')), { _date_created: 1000, _date_modified: 5000 });
    const file = join(root, O, T, 'a.json');
    assert.equal(readFileSync(file, 'utf8'), JSON.stringify({ ...rec('a'), _date_modified: 5000, title: 'new' }, null, 2) + '\n', 'pretty, like every record file');
    assert.equal(await s.update(O, T, 'missing', change('x')), null);
    assert.equal(await s.update(O, T, 'a', change('y'.repeat(2000))), null, 'over the limit');
    writeFileSync(file, '{ "_id": "a", broken');
    assert.equal(await s.update(O, T, 'a', change('z')), null, 'a broken hand edit');
    assert.equal(readFileSync(file, 'utf8'), '{ "_id": "a", broken', 'and it is left alone');
    writeFileSync(file, JSON.stringify(rec('b')));
    assert.equal(await s.update(O, T, 'a', change('z')), null, 'a file naming another id');
  } finally {
    await s.close();
  }
});

test('flatfile: a folder of your own named like a temp file neither blocks opening nor is removed', async () => {
  const root = fresh();
  const s = await open(root);
  await s.create(O, T, rec('a'));
  await s.close();
  // The store makes only files with this prefix in a table folder; a folder there is someone else's.
  mkdirSync(join(root, O, T, '.tmp-mine'));
  writeFileSync(join(root, O, T, '.tmp-mine', 'note.txt'), 'keep me');
  writeFileSync(join(root, O, T, '.tmp-a.json-0123456789ab'), 'temp file');
  mkdirSync(join(root, O, '.tmp-mine-too'));
  writeFileSync(join(root, O, '.tmp-mine-too', 'note.txt'), 'keep me too');
  writeFileSync(join(root, O, '.tmp-_changes.jsonl-0123456789ab'), 'temp file');
  const s2 = await open(root);
  assert.deepEqual(await s2.get(O, T, 'a'), rec('a'));
  assert.deepEqual((await s2.query(O, T, all, byId)).map((r) => r._id), ['a']);
  await s2.close();
  assert.equal(readFileSync(join(root, O, T, '.tmp-mine', 'note.txt'), 'utf8'), 'keep me');
  assert.deepEqual(readdirSync(join(root, O, T)).sort(), ['.tmp-mine', 'a.json'], 'leftover temp files go, the folder stays');
  assert.equal(readFileSync(join(root, O, '.tmp-mine-too', 'note.txt'), 'utf8'), 'keep me too');
  assert.ok(!existsSync(join(root, O, '.tmp-_changes.jsonl-0123456789ab')), 'a temp file beside the tables goes');
});

test('flatfile: a write whose file name a folder or a link of your own holds is refused, saying so, and the folder stays', async () => {
  const root = fresh();
  const s = await open(root);
  await s.create(O, T, rec('a'));
  mkdirSync(join(root, O, T, 'dir.json'));
  symlinkSync(join(root, O, T, 'a.json'), join(root, O, T, 'link.json'));
  const notRecord = (e: unknown) => e instanceof FreeholdError && e.code === 'conflict' && /not a record file/.test(e.message);
  await assert.rejects(s.put(O, T, rec('dir')), notRecord);
  await assert.rejects(s.create(O, T, rec('link')), notRecord);
  await assert.rejects(s.create(O, T, rec('a')), (e: unknown) => e instanceof FreeholdError && e.code === 'conflict' && /already exists/.test(e.message));
  assert.ok(statSync(join(root, O, T, 'dir.json')).isDirectory());
  assert.deepEqual((await s.query(O, T, all, byId)).map((r) => r._id), ['a']);
  await s.close();
});

test('flatfile: a named pipe under a record\'s name is not a record, and blocks nothing', async () => {
  const root = fresh();
  const s = await open(root);
  await s.create(O, T, rec('a'));
  await s.create(O, T, rec('r', { v: 1 }));
  await s.close();
  // A journalled write of r the crash cut short, and a pipe put in r's place since.
  const changesFile = join(root, O, '_changes.jsonl');
  const text = (r: StoredRecord) => JSON.stringify(r, null, 2) + '\n';
  writeFileSync(join(root, O, '_journal.json'), journalEntry({
    kind: 'write', changesOffset: statSync(changesFile).size, seqBefore: 2, changes: [{ seq: 3, table: T, id: 'r', op: 'put', at: Date.now() }],
    writes: [{ table: T, id: 'r', text: text(rec('r', { v: 2 })) }], before: [{ table: T, id: 'r', text: text(rec('r', { v: 1 })) }],
  }));
  unlinkSync(join(root, O, T, 'r.json'));
  execFileSync('mkfifo', [join(root, O, T, 'r.json'), join(root, O, T, 'p.json'), join(root, 'pipe')]);
  // In a child process with a time limit: opening a pipe without a writer blocks, and a
  // blocked event loop would stop this test runner too.
  const script = `
    import { FlatFileRecordStore } from './src/storage/flatfile/record-store.ts';
    import { fsyncFile } from './src/storage/flatfile/fsutil.ts';
    const O = 'alice', T = 'com.example.notes';
    await fsyncFile(${JSON.stringify(join(root, 'pipe'))});
    const s = new FlatFileRecordStore(${JSON.stringify(root)});
    await s.init();
    const recovered = await s.get(O, T, 'r');
    const got = await s.get(O, T, 'p');
    const ids = (await s.query(O, T, { op: 'true' }, { sort: [{ path: ['_id'], direction: 1 }], skip: 0, limit: 10 })).map((r) => r._id);
    const put = await s.put(O, T, { _id: 'p', _date_created: 1, _date_modified: 1 }).then(() => 'written', (e) => e.code + ': ' + e.message);
    await s.put(O, T, { _id: 'a', _date_created: 1, _date_modified: 2 });
    await s.close();
    console.log(JSON.stringify({ recovered, got, ids, put }));
  `;
  const out = runChildScript<{ recovered: unknown; got: unknown; ids: string[]; put: string }>(script, 'the store hung on a pipe');
  assert.deepEqual(out.recovered, rec('r', { v: 2 }), 'recovery puts the journalled record back in the pipe\'s place');
  assert.equal(out.got, null);
  assert.deepEqual(out.ids, ['a', 'r']);
  assert.match(out.put, /^conflict: Something that is not a record file holds the name of id p in com\.example\.notes/);
  assert.ok(statSync(join(root, O, T, 'p.json')).isFIFO(), 'the pipe under a name the journal does not know stays');
});

test('flatfile: a file in the place of a table folder refuses the writes to that table only, saying so', async () => {
  const root = fresh();
  const s = await open(root);
  await s.create(O, T, rec('a'));
  writeFileSync(join(root, O, 'com.example.blocked'), 'a file of my own');
  // Issued together, so they share one unit.
  const [blocked, other, batch] = await Promise.allSettled([
    s.create(O, 'com.example.blocked', rec('x')),
    s.create(O, T, rec('b')),
    s.batch(O, [{ kind: 'put', table: T, record: rec('c') }, { kind: 'put', table: 'com.example.blocked', record: rec('y') }]),
  ]);
  assert.equal(blocked.status, 'rejected');
  const reason = (blocked as PromiseRejectedResult).reason as FreeholdError;
  assert.equal(reason.code, 'conflict');
  assert.match(reason.message, /not a folder holds the place of table com\.example\.blocked/);
  assert.equal(other.status, 'fulfilled', 'a write to another table in the same unit is not affected');
  assert.equal(batch.status, 'rejected', 'a batch touching the table fails whole');
  assert.deepEqual((await s.query(O, T, all, byId)).map((r) => r._id), ['a', 'b']);
  assert.equal(await s.delete(O, 'com.example.blocked', 'x'), null, 'a delete there finds no record, as before');
  assert.equal(readFileSync(join(root, O, 'com.example.blocked'), 'utf8'), 'a file of my own');
  await s.close();
});
