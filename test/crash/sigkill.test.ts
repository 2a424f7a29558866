/**
 * Security hardening, item 7: crash safety.
 *
 * The real server runs as a child process (`node --import tsx src/cli/main.ts serve`)
 * on a temp FREEHOLD_DATA with the default stores (SQLite records, fs blobs), or with
 * CRASH_RECORDS=flatfile the flat-file record store (sigkill-flatfile.test.ts). A
 * concurrent load of CEPS creates, updates and deletes plus FEPS uploads runs against
 * it, and the process is killed with SIGKILL at a seeded moment, several rounds in a
 * row, each time restarting on the same data. After every kill:
 *
 *   - the server starts cleanly;
 *   - every acknowledged write (200 received) is there with its exact content; an
 *     update reads as the last acknowledged value or a later unacknowledged attempt;
 *     an acknowledged delete stays gone; a record the test never sent is an error;
 *   - every record parses and carries its reserved fields (no half-written record);
 *   - every acknowledged upload is complete and byte-equal; an unacknowledged one is
 *     absent or complete (never partial);
 *   - the change log pages cleanly through RecordStore.changes(): strictly increasing
 *     seqs, any page size gives the same sequence, history already seen never changes,
 *     and each record's last change agrees with its state.
 *
 * Determinism: the kill moments come from a seeded PRNG (FUZZ_SEED overrides) and are
 * expressed as "after N acknowledged writes, then M ms"; nothing asserts wall-clock times.
 * Loopback only; every wait is bounded.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { SqliteRecordStore } from '../../src/storage/sqlite/record-store.js';
import { FlatFileRecordStore } from '../../src/storage/flatfile/record-store.js';
import { readJournals } from '../../src/storage/flatfile/journal.js';
import { FlatFilePaths } from '../../src/storage/flatfile/paths.js';
import type { Change, RecordStore } from '../../src/storage/types.js';
import { makeRng } from '../helpers/rng.js';

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) >>> 0 : 0xc4a5_4001;
const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 5);
const WORKERS = 8;
const root = path.resolve(import.meta.dirname, '..', '..');
const main = path.join(root, 'src', 'cli', 'main.ts');
const APP = 'com.example.notes';
const TABLES = [APP, `${APP}.posts`]; // `.posts` has app-declared indexes: index writes are part of every commit
const FILES_TABLE = `${APP}.files`;
const PASSWORD = 'a long crash-test passphrase';

const dataDir = mkdtempSync(path.join(tmpdir(), 'freehold-crash-'));
after(() => { if (!process.env.CRASH_KEEP) rmSync(dataDir, { recursive: true, force: true }); });

const FLATFILE = process.env.CRASH_RECORDS === 'flatfile';
const flatRoot = path.join(dataDir, 'records');
const env = {
  ...process.env, ...(FLATFILE ? { FREEHOLD_RECORDS: `flatfile:${flatRoot}` } : {}), FREEHOLD_DATA: dataDir, FREEHOLD_CONFIG: '', PORT: '0', HOST: '127.0.0.1',
  FREEHOLD_LOG_LEVEL: 'silent', FREEHOLD_RATE_LIMIT: 'off', FREEHOLD_BACKUP_BLOBS: '',
};


function cli(args: string[], input?: string): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', main, ...args], { cwd: root, env, input, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `freehold ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

interface Running { child: ChildProcessWithoutNullStreams; url: string; stderr: () => string; exited: Promise<number | null> }

/** Starts `freehold serve` and waits (bounded) for the line that names its URL. */
async function startServer(): Promise<Running> {
  const child = spawn(process.execPath, ['--import', 'tsx', main, 'serve'], { cwd: root, env });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 60 s:\n${out}\n${err}`)), 60_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /freehold is running at (http:\/\/\S+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]!.replace('//localhost:', '//127.0.0.1:')); }
    });
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`server exited (${code}) while starting:\n${out}\n${err}`)); });
  });
  return { child, url, stderr: () => err, exited };
}

// ---------------------------------------------------------------------------
// What the test believes about the data
// ---------------------------------------------------------------------------

type Content = Record<string, unknown>;
/** A record's possible states: what was acknowledged last, plus attempts after it whose fate is unknown. */
interface Tracked { table: string; acked: Content | 'deleted'; maybe: Array<Content | 'deleted'> }
interface TrackedFile { acked: Buffer | null; maybe: Buffer[] }

const records = new Map<string, Tracked>(); // key: `${table}/${id}`
const unackedCreates = new Map<string, { table: string; body: Content }>(); // by nonce
const files = new Map<string, TrackedFile>(); // by file name
const busy = new Set<string>(); // one operation in flight per record or file, so "later" is well defined
let lastSeenChanges: Change[] = [];

function clientFields(r: Record<string, unknown>): Content {
  return Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('_')));
}

class Load {
  acked = 0;
  stopped = false;
  /** A refused write (a bug, not a crash): stops the load and fails the round with its message. */
  error: unknown;
  private n = 0;
  constructor(private readonly url: string, private readonly token: string, private readonly rng: ReturnType<typeof makeRng>) {}

  private async call(method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: () => unknown } | null> {
    try {
      const res = await fetch(this.url + p, {
        method, headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined && !(body instanceof Buffer) ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: body instanceof Buffer ? body : JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(20_000),
      });
      const text = await res.text();
      return { status: res.status, json: () => JSON.parse(text) as unknown };
    } catch {
      this.stopped = true; // the server is gone (or going): the write's fate is unknown
      return null;
    }
  }

  private body(): Content {
    const nonce = `w${this.n++}-${this.rng.int(1e9)}`;
    return { nonce, title: `t${this.rng.int(1000)}`, meta: { tag: this.rng.pick(['a', 'b', 'c']) }, created: this.rng.int(1e6), text: 'x'.repeat(this.rng.int(4000)) };
  }

  private pickFree(kind: 'record' | 'file'): string | undefined {
    const keys = kind === 'record'
      ? [...records].filter(([k, t]) => t.acked !== 'deleted' && !busy.has(k)).map(([k]) => k)
      : [...files].filter(([k, f]) => f.acked !== null && !busy.has(k)).map(([k]) => k);
    return keys.length ? this.rng.pick(keys) : undefined;
  }

  async worker(): Promise<void> {
    while (!this.stopped) {
      const r = this.rng.next();
      if (r < 0.45) await this.create();
      else if (r < 0.72) await this.update();
      else if (r < 0.88 || FLATFILE) await this.remove(); // file records' ids hold '/', which flat-file names refuse
      else await this.upload();
    }
  }

  private async create() {
    const table = this.rng.pick(TABLES);
    const body = this.body();
    unackedCreates.set(body.nonce as string, { table, body });
    const res = await this.call('POST', `/ceps/write/${table}`, body);
    if (!res) return;
    assert.equal(res.status, 200, `create refused: ${JSON.stringify(res.json())}`);
    const id = (res.json() as { _id: string })._id;
    unackedCreates.delete(body.nonce as string);
    records.set(`${table}/${id}`, { table, acked: body, maybe: [] });
    this.acked++;
  }

  private async update() {
    const key = this.pickFree('record');
    if (!key) return this.create();
    busy.add(key);
    try {
      const t = records.get(key)!;
      const body = this.body();
      t.maybe.push(body);
      const res = await this.call('PUT', `/ceps/update/${key}`, body);
      if (!res) return;
      assert.equal(res.status, 200, `update of ${key} refused: ${JSON.stringify(res.json())}`);
      t.acked = body;
      t.maybe = [];
      this.acked++;
    } finally {
      busy.delete(key);
    }
  }

  private async remove() {
    const key = this.pickFree('record');
    if (!key) return this.create();
    busy.add(key);
    try {
      const t = records.get(key)!;
      t.maybe.push('deleted');
      const res = await this.call('DELETE', `/ceps/delete/${key}`);
      if (!res) return;
      assert.equal(res.status, 200, `delete of ${key} refused: ${JSON.stringify(res.json())}`);
      t.acked = 'deleted';
      t.maybe = [];
      this.acked++;
    } finally {
      busy.delete(key);
    }
  }

  private async upload() {
    // Mostly new files; sometimes an overwrite of an acknowledged one (old or new bytes, never a mix).
    const existing = this.rng.next() < 0.3 ? this.pickFree('file') : undefined;
    const name = existing ?? `f${this.n++}-${this.rng.int(1e6)}.bin`;
    if (busy.has(name)) return;
    busy.add(name);
    try {
      const bytes = Buffer.from(Array.from({ length: 1 + this.rng.int(300_000) }, () => this.rng.int(256)));
      const f = files.get(name) ?? { acked: null, maybe: [] };
      files.set(name, f);
      f.maybe.push(bytes);
      const b = `----crash${this.rng.int(1e9)}`;
      // Options last, as freezr's own client sends them: the bytes go through staging first.
      const optionsFirst = this.rng.next() < 0.5;
      const opts = `--${b}\r\nContent-Disposition: form-data; name="options"\r\n\r\n${JSON.stringify({ fileName: name, targetFolder: 'crash' })}\r\n`;
      const file = Buffer.concat([Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`), bytes, Buffer.from('\r\n')]);
      const body = Buffer.concat(optionsFirst ? [Buffer.from(opts), file, Buffer.from(`--${b}--\r\n`)] : [file, Buffer.from(opts), Buffer.from(`--${b}--\r\n`)]);
      const res = await this.call('PUT', `/feps/upload/${APP}`, body, { 'content-type': `multipart/form-data; boundary=${b}` });
      if (!res) return;
      assert.equal(res.status, 200, `upload of ${name} refused: ${JSON.stringify(res.json())}`);
      f.acked = bytes;
      f.maybe = [];
      this.acked++;
    } finally {
      busy.delete(name);
    }
  }
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

async function getJson(url: string, token: string, p: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url + p, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) });
  return { status: res.status, body: await res.json() };
}

function describe(v: Content | 'deleted' | undefined): string {
  return v === 'deleted' ? 'deleted' : v === undefined ? 'absent' : JSON.stringify({ ...v, text: `(${String(v.text ?? '').length} chars)` });
}

/** Checks the live server against the model, then settles every unknown outcome to what is now on disk. */
async function verifyOverHttp(url: string, token: string, round: number): Promise<{ live: number; files: number; inFlight: number }> {
  const problems: string[] = [];
  // Writes whose outcome the kill left unknown: proof that the kill landed mid-load.
  const inFlight = unackedCreates.size + [...records.values()].filter((t) => t.maybe.length).length + [...files.values()].filter((f) => f.maybe.length).length;
  // Every record of every table, paged, each with its reserved fields.
  const seen = new Map<string, Record<string, unknown>>();
  for (const table of TABLES) {
    for (let skip = 0; ; skip += 5000) {
      const { status, body } = await getJson(url, token, `/ceps/query/${table}?_count=5000&_skip=${skip}`);
      assert.equal(status, 200, `query ${table} after round ${round}: ${JSON.stringify(body)}`);
      const rows = body as Array<Record<string, unknown>>;
      for (const r of rows) {
        if (typeof r._id !== 'string' || !Number.isFinite(r._date_created) || !Number.isFinite(r._date_modified) || (r._date_created as number) > (r._date_modified as number)) {
          problems.push(`record without proper reserved fields in ${table}: ${JSON.stringify(r).slice(0, 200)}`);
        }
        seen.set(`${table}/${String(r._id)}`, r);
      }
      if (rows.length < 5000) break;
    }
  }
  for (const [key, t] of records) {
    const row = seen.get(key);
    const actual: Content | 'deleted' = row ? clientFields(row) : 'deleted';
    const allowed = [t.acked, ...t.maybe];
    if (!allowed.some((a) => isDeepStrictEqual(a, actual))) {
      problems.push(`${key}: found ${describe(actual)}; acknowledged ${describe(t.acked)}; unacknowledged attempts ${t.maybe.map(describe).join(', ') || 'none'}`);
    }
    if (row) {
      // A point read agrees with the query (same bytes behind both paths).
      const one = await getJson(url, token, `/ceps/read/${key}`);
      if (one.status !== 200 || !isDeepStrictEqual(one.body, row)) problems.push(`${key}: read gave ${one.status} ${JSON.stringify(one.body).slice(0, 200)}`);
    }
    // Settle: whatever is on disk now is the new acknowledged state.
    t.acked = actual;
    t.maybe = [];
    seen.delete(key);
  }
  for (const [key, row] of seen) {
    const pending = unackedCreates.get(String(row.nonce));
    if (!pending || `${pending.table}/${String(row._id)}` !== key || !isDeepStrictEqual(clientFields(row), pending.body)) {
      problems.push(`record the test never acknowledged and does not match any attempted create: ${key} ${JSON.stringify(row).slice(0, 200)}`);
      continue;
    }
    records.set(key, { table: pending.table, acked: pending.body, maybe: [] });
  }
  unackedCreates.clear();

  // Files: complete and byte-equal; the metadata record, when present, agrees.
  let fileCount = 0;
  const fileRecords = new Map<string, { _file_size?: number }>();
  {
    const { status, body } = await getJson(url, token, `/ceps/query/${FILES_TABLE}?_count=5000`);
    assert.equal(status, 200, `query ${FILES_TABLE}: ${JSON.stringify(body)}`);
    for (const r of body as Array<{ _id: string; _file_size?: number }>) fileRecords.set(r._id, r);
  }
  for (const [name, f] of files) {
    const res = await fetch(`${url}/feps/userfiles/${APP}/alice/crash/${name}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) });
    const bytes = res.status === 200 ? Buffer.from(await res.arrayBuffer()) : null;
    if (res.status !== 200) await res.arrayBuffer();
    if (res.status !== 200 && res.status !== 404) problems.push(`file ${name}: status ${res.status}`);
    const allowed = [f.acked, ...f.maybe];
    if (!allowed.some((a) => (a === null ? bytes === null : bytes !== null && a.equals(bytes)))) {
      problems.push(`file ${name}: found ${bytes ? `${bytes.length} bytes` : 'nothing'}; acknowledged ${f.acked ? `${f.acked.length} bytes` : 'nothing'}; ` +
        `unacknowledged ${f.maybe.map((b) => b.length).join(', ') || 'none'} (partial or mixed content is never allowed)`);
    }
    if (bytes) {
      fileCount++;
      const m = fileRecords.get(`crash/${name}`);
      if (m) {
        // The record is written after the bytes; an overwrite killed between the two leaves the
        // previous record, pointing at the previous bytes (kept until a new record is in): what
        // is served (a complete version, checked above) is always what the record describes.
        if (m._file_size !== bytes.length) {
          problems.push(`file ${name}: its record (size ${m._file_size}) does not describe the ${bytes.length} bytes served`);
        }
      } else if (f.acked !== null && f.maybe.length === 0) {
        problems.push(`file ${name}: acknowledged, but its record is missing`);
      }
    }
    f.acked = bytes;
    f.maybe = [];
  }
  if (problems.length) assert.fail(`after kill ${round} (FUZZ_SEED=${SEED}), ${problems.length} problems:\n${problems.slice(0, 30).join('\n')}`);
  return { live: [...records.values()].filter((t) => t.acked !== 'deleted').length, files: fileCount, inFlight };
}

/**
 * With the server dead, opens the database as the next process would and pages the
 * owner's change log through the RecordStore API.
 */
async function verifyChangeLog(round: number): Promise<number> {
  const store: RecordStore = FLATFILE ? new FlatFileRecordStore(flatRoot) : new SqliteRecordStore(path.join(dataDir, 'freehold.db'));
  await store.init();
  try {
    const all = await store.changes('alice', 0, 1_000_000_000);
    for (let i = 1; i < all.length; i++) {
      assert.ok(all[i]!.seq > all[i - 1]!.seq, `change seqs not increasing at ${i}: ${all[i - 1]!.seq} then ${all[i]!.seq}`);
    }
    // Any page size walks the same sequence, each page resuming after the last seq it saw.
    for (const pageSize of [1, 7, 100]) {
      const paged: Change[] = [];
      for (let since = 0; ;) {
        const page = await store.changes('alice', since, pageSize);
        paged.push(...page);
        if (page.length < pageSize) break;
        since = page[page.length - 1]!.seq;
      }
      assert.deepEqual(paged.map((c) => c.seq), all.map((c) => c.seq), `paging by ${pageSize} after kill ${round} differs from one read`);
    }
    // History already seen is never rewritten (nothing acknowledged was lost or reordered).
    assert.deepEqual(all.slice(0, lastSeenChanges.length), lastSeenChanges, `change log history changed after kill ${round}`);
    lastSeenChanges = all;
    // Each record's last change matches its state.
    const last = new Map<string, Change>();
    for (const c of all) last.set(`${c.table}/${c.id}`, c);
    for (const table of [...TABLES, FILES_TABLE]) {
      for (const r of await store.query('alice', table, { op: 'true' }, { sort: [], skip: 0, limit: 1_000_000 })) {
        assert.equal(last.get(`${table}/${r._id}`)?.op, 'put', `live record ${table}/${r._id} has no put as its last change after kill ${round}`);
      }
    }
    for (const [key, t] of records) {
      if (t.acked === 'deleted' && t.maybe.length === 0 && last.has(key)) {
        assert.equal(last.get(key)!.op, 'delete', `deleted record ${key} has ${last.get(key)!.op} as its last change after kill ${round}`);
      }
    }
    return all.length;
  } finally {
    await store.close();
  }
}

/**
 * Flat files only. A SIGKILL keeps the page cache, so what the store wrote without
 * fsync is still there. This makes the disk look as a power loss at the moment of the
 * kill could have left it: for every record written by a journalled unit (one not yet
 * checkpointed), the file is left as it is, or put back to its last checkpointed
 * state (the rename or unlink lost), or emptied (the rename kept, its data lost); the
 * change log loses every line after the last checkpoint; a torn entry follows the
 * journal. Recovery must still bring back every acknowledged write. Returns the
 * number of journalled units (how much recovery had to redo).
 */
async function losePower(rng: ReturnType<typeof makeRng>): Promise<number> {
  const paths = new FlatFilePaths(flatRoot);
  const { entries } = await readJournals(paths, 'alice');
  const checkpointed = new Map<string, string | null>();
  for (const e of entries) {
    if (e.kind !== 'write') continue;
    e.writes.forEach((w, i) => {
      const file = paths.record('alice', w.table, w.id);
      if (!checkpointed.has(file)) checkpointed.set(file, e.before[i]!.text);
    });
  }
  for (const [file, before] of checkpointed) {
    const r = rng.int(3);
    if (r === 1 && before === null) rmSync(file, { force: true });
    else if (r === 1) writeFileSync(file, before!);
    else if (r === 2 && existsSync(file)) writeFileSync(file, '');
  }
  if (entries.length > 0) truncateSync(paths.changes('alice'), entries[0]!.changesOffset);
  appendFileSync(paths.journals('alice')[rng.int(2)], '{"bytes":4096,"sha256":"0000"}\n{"version":2,"ki');
  return entries.length;
}

test(`SIGKILL under write load loses no acknowledged write (${FLATFILE ? 'flatfile' : 'sqlite'}, seed ${SEED})`, { timeout: 600_000 }, async (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED} rounds=${ROUNDS}`);
  console.log(`crash: FUZZ_SEED=${SEED}, ${ROUNDS} rounds, data in ${dataDir}`);
  const rng = makeRng(SEED);
  cli(['user', 'add', 'alice', '--password-stdin'], PASSWORD + '\n');
  cli(['app', 'install', path.join(root, 'test', 'fixtures', 'apps', APP), '--user', 'alice']);
  const appPassword = cli(['app-password', 'alice', APP]).trim();

  let server = await startServer();
  const tokenRes = await fetch(`${server.url}/oauth/token`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'password', username: 'alice', password: appPassword, client_id: APP }),
  });
  assert.equal(tokenRes.status, 200, await tokenRes.clone().text());
  const token = ((await tokenRes.json()) as { access_token: string }).access_token;

  let journalled = 0;
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const load = new Load(server.url, token, rng);
      const workers = Array.from({ length: WORKERS }, () => load.worker().catch((err: unknown) => {
        load.error ??= err;
        load.stopped = true;
      }));
      // The kill moment: after a seeded number of acknowledged writes, plus a seeded delay.
      const threshold = 40 + rng.int(200);
      const delayMs = rng.int(40);
      const deadline = Date.now() + 120_000;
      while (load.acked < threshold && !load.stopped) {
        assert.ok(Date.now() < deadline, `round ${round}: only ${load.acked} of ${threshold} writes acknowledged in 120 s`);
        await new Promise((r) => setTimeout(r, 2));
      }
      if (load.error) throw load.error;
      assert.ok(!load.stopped, `round ${round}: the server went away before it was killed:\n${server.stderr()}`);
      await new Promise((r) => setTimeout(r, delayMs));
      server.child.kill('SIGKILL');
      const code = await server.exited;
      await Promise.all(workers);
      if (load.error) throw load.error;
      assert.equal(code, null, 'the server died of the signal');
      // Flat files: every other round, a power loss rather than a process kill.
      const units = FLATFILE ? (round % 2 === 0 ? await losePower(rng) : (await readJournals(new FlatFilePaths(flatRoot), 'alice')).entries.length) : 0;
      journalled += units;
      const changes = await verifyChangeLog(round);

      server = await startServer();
      const ping = await fetch(`${server.url}/ceps/ping`, { headers: { authorization: `Bearer ${token}` } });
      assert.deepEqual(((await ping.json()) as { logged_in: boolean }).logged_in, true, 'the app token survives the crash');
      const { live, files: fileCount, inFlight } = await verifyOverHttp(server.url, token, round);
      console.log(`crash: round ${round}: killed after ${load.acked} acknowledged writes (+${delayMs} ms) with ${inFlight} in flight; ` +
        `${live} live records, ${fileCount} files, ${changes} changes${FLATFILE ? `, ${units} journalled units redone${round % 2 === 0 ? ' after a simulated power loss' : ''}` : ''}; restart clean`);
      assert.equal(server.stderr(), '', `the restarted server wrote to stderr:\n${server.stderr()}`);
    }
  } finally {
    // A clean stop at the end: SIGTERM closes the stores; bounded wait, then force.
    server.child.kill('SIGTERM');
    const timer = setTimeout(() => server.child.kill('SIGKILL'), 15_000);
    await server.exited;
    clearTimeout(timer);
  }
  await verifyChangeLog(ROUNDS + 1);
  if (FLATFILE) assert.ok(journalled > 0, 'no kill landed before a checkpoint: roll-forward was never exercised');
});
