import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlatFileRecordStore } from '../../src/storage/flatfile/record-store.js';
import { FlatFilePaths } from '../../src/storage/flatfile/paths.js';
import { SYSTEM_OWNER, SystemTable } from '../../src/core/system-tables.js';
import { TokenService } from '../../src/core/auth/tokens.js';
import { OWN, storeView } from '../helpers/store-view.js';
import { until } from '../helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'freehold-flatfile-stamp-'));
let n = 0;
after(() => rmSync(dir, { recursive: true, force: true }));

const rec = (id: string) => ({ _id: id, _date_created: 1, _date_modified: 1 });
const turn = () => new Promise((r) => setImmediate(r));

/**
 * The stamp once it has stopped moving: a system write's own events (and those of the
 * background checkpoint that follows it, which empties a journal file) arrive a moment
 * after the write, so a test reads the stamp it compares with only after they are in.
 * The checkpoint runs on the disk thread, which may first have to start: its journal
 * files are waited for to be empty before the stamp is watched.
 */
async function settledStamp(store: FlatFileRecordStore, root: string): Promise<number | undefined> {
  const journals = new FlatFilePaths(root).journals(SYSTEM_OWNER);
  await until('the system owner\'s checkpoint', () => journals.every((f) => !existsSync(f) || statSync(f).size === 0), 10_000);
  let last = store.changeStamp();
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const now = store.changeStamp();
    if (now === last) return now;
    last = now;
  }
  throw new Error('the change stamp never settled');
}

/** Waits (at most 2 s) until the store's stamp differs from `from`: an inotify event arrives a moment after its change. */
async function stampMoves(what: string, store: FlatFileRecordStore, from: number | undefined): Promise<void> {
  await until(what, () => store.changeStamp() !== from, 2000);
}

test('flatfile change stamp: stable while nothing changes, moved by a hand edit in a system table, and by one in a system table made later', async () => {
  const root = join(dir, `s${n++}`);
  const store = new FlatFileRecordStore(root);
  await store.init();
  try {
    assert.equal(store.changeStamp(), undefined, 'no system folder yet: nothing to watch, so no stamp (and no caching)');
    await store.put(SYSTEM_OWNER, 'system.sessions', rec('a'));
    await store.put('alice', 'com.example.notes', rec('n'));
    assert.equal(typeof store.changeStamp(), 'number');
    const first = await settledStamp(store, root);
    await turn();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(store.changeStamp(), first, 'no change, no move');
    await store.put('alice', 'com.example.notes', rec('m'));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(store.changeStamp(), first, 'another owner\'s writes do not move it');

    const paths = new FlatFilePaths(root);
    unlinkSync(paths.record(SYSTEM_OWNER, 'system.sessions', 'a'));
    await stampMoves('a system record deleted by hand moves it', store, first);

    // A system table folder that appears after the watches were set up is watched too.
    const tableDir = paths.table(SYSTEM_OWNER, 'system.later');
    const beforeMkdir = store.changeStamp();
    mkdirSync(tableDir);
    await stampMoves('a new system table folder moves it', store, beforeMkdir);
    const settled = await settledStamp(store, root);
    writeFileSync(join(tableDir, 'x.json'), JSON.stringify(rec('x')));
    await stampMoves('a file written by hand in the new folder moves it', store, settled);

    // The folder removed and made again: its new incarnation is watched.
    rmSync(tableDir, { recursive: true });
    mkdirSync(tableDir);
    const again = await settledStamp(store, root);
    writeFileSync(join(tableDir, 'y.json'), JSON.stringify(rec('y')));
    await stampMoves('a file written in the remade folder moves it', store, again);
  } finally {
    await store.close();
  }
  assert.equal(store.changeStamp(), undefined, 'a closed store has none');
});

test('flatfile change stamp: none when the store does not watch directories', async () => {
  const store = new FlatFileRecordStore(join(dir, `s${n++}`), { watch: false });
  await store.init();
  await store.put(SYSTEM_OWNER, 'system.sessions', rec('a'));
  assert.equal(store.changeStamp(), undefined);
  await store.close();
});

test('flatfile token cache: checks are answered from memory, and a token file deleted by hand is refused a moment later', async () => {
  const root = join(dir, `s${n++}`);
  const store = new FlatFileRecordStore(root);
  await store.init();
  let gets = 0;
  const counting = storeView(store, (prop) =>
    prop === 'get' ? (...args: Parameters<FlatFileRecordStore['get']>) => { gets++; return store.get(...args); } : OWN);
  // A minute of cache time: only the stamp can end the entry within this test.
  const tokens = new TokenService(counting, 'secret', 60_000);
  try {
    const token = await tokens.issue({ kind: 'app', userId: 'alice', ownerId: 'alice', appName: 'com.example.notes', expiresAt: Date.now() + 3_600_000 });
    await settledStamp(store, root); // the issue's own file events
    assert.equal((await tokens.check(token, 'app')).ok, true);
    const looked = gets;
    for (let i = 0; i < 5; i++) assert.equal((await tokens.check(token, 'app')).ok, true);
    assert.equal(gets, looked, 'repeated checks do not read the token file again');

    const tokenDir = new FlatFilePaths(root).table(SYSTEM_OWNER, SystemTable.tokens);
    const files = readdirSync(tokenDir).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1);
    unlinkSync(join(tokenDir, files[0]!));
    await until('the hand deletion is seen within two seconds, though the cache time is a minute', async () => !(await tokens.check(token, 'app')).ok, 2000);
  } finally {
    await store.close();
  }
});
