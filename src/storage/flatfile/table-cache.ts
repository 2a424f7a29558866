import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { FreeholdError } from '../../core/errors.js';
import type { StoredRecord } from '../types.js';
import { isErrno } from './fsutil.js';
import { READ_WITHOUT_WAITING } from '../open-flags.js';
import { OCCUPIED } from './plan.js';
import { parseRecord } from './format.js';
import { idFromFileName } from './paths.js';
import { candidates, EqIndex, equalityPaths } from './eq-index.js';
import { pathKey } from '../../query/compared-paths.js';
import type { Condition, FieldPath } from '../../query/types.js';
import { Watcher, type DirWatch } from './watch.js';

/**
 * Parsed records per table directory, so a query does not re-read and re-parse every
 * file each time, with equality indexes over them (eq-index.ts).
 *
 * Watched tables (Linux, see watch.ts). The directory is watched before it is first
 * read; from then on an entry is trusted until the watch reports its name, the store
 * writes it, or the watch reports something it cannot name (then every file is
 * re-checked as below). Before reading, a query waits for the watcher's barrier, so
 * a change that completed before the query began has been reported by then. The
 * directory's inode is compared on every query (a directory replaced wholesale),
 * and files with more than one hard link are re-stat'ed every time (a write through
 * another link is reported on that link's directory, not this one). So a query costs
 * the barrier and re-reads only what changed.
 *
 * Unwatched tables (no watch could be set up, or it failed, or the barrier did not
 * come back): an entry is trusted only while
 *   - the table's generation is unchanged (bumped by the store's own writes, which
 *     also forget the exact files they wrote: timestamps are too coarse, and inode
 *     numbers are recycled, to tell two quick writes of one file apart), and
 *   - the directory's mtime is unchanged (a file added, removed or renamed, e.g. by
 *     hand; otherwise the listing is reused), and
 *   - each file's inode, size and mtime are unchanged (an edit in place, e.g. `vi`).
 * So such a query costs a stat per file, and re-reads only files that changed.
 *
 * File system timestamps are coarse (a few ms on Linux, up to 2 s elsewhere), so a
 * second change within the same tick leaves the mtime as it was. As git does with
 * its index, a timestamp that was recent when we looked is not trusted: a directory
 * or file whose mtime was within RACY_NS of the clock when we read it is re-read
 * next time, until it has aged.
 *
 * Either way, a hand edit that completed before a query started is seen by it.
 *
 * Reads here are synchronous on purpose: the store makes readers wait while a unit is
 * being applied, and a read that never yields cannot interleave with the next one.
 */

interface FileEntry {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  nlink: bigint;
  /** The mtime was too recent to prove a later change would alter it: re-read next time. */
  racy: boolean;
  record: StoredRecord;
}

interface CachedTable {
  gen: number;
  dirMtimeNs: bigint;
  /** As FileEntry.racy, for the listing. */
  dirRacy: boolean;
  dirIno: bigint;
  dirDev: bigint;
  files: Map<string, FileEntry>;
  /** Every record, built when a query needs them all; null after any change. */
  records: StoredRecord[] | null;
  /** By pathKey. Kept in step with `files` by putEntry/dropEntry, rebuilt by scans. */
  indexes: Map<string, EqIndex<FileEntry>>;
  /** Names of files with more than one hard link: re-stat'ed on every query. */
  linked: Set<string>;
  watch: DirWatch | null;
}

const NOFOLLOW = constants.O_NOFOLLOW ?? 0;
/** Larger than any common timestamp granularity (FAT: 2 s), plus clock slack. */
const RACY_NS = 3_000_000_000n;
/** Indexes per table: the declared ones, then paths queried by equality, up to this many. */
const MAX_INDEXES = 8;

function isRacy(mtimeNs: bigint): boolean {
  return BigInt(Date.now()) * 1_000_000n - mtimeNs < RACY_NS;
}

function sameFile(e: FileEntry, st: BigIntStats): boolean {
  return !e.racy && e.ino === st.ino && e.size === st.size && e.mtimeNs === st.mtimeNs;
}

/**
 * Reads one record file; null if absent. Symlinks are not followed: a record is a
 * regular file inside the root, nothing else.
 */
export function readRecordFile(file: string): { record: StoredRecord; stat: BigIntStats } | null {
  const got = readRecordOrOccupant(file);
  return got === null || got === OCCUPIED ? null : { record: parseRecord(got.text, file), stat: got.stat };
}

/**
 * The raw text of a record file (regular files only, symlinks not followed), or null if
 * nothing holds its name, or OCCUPIED if something that is not a record file does (a
 * folder, a symlink, a named pipe, a socket): no record to read, and a name a write
 * cannot take without a hand change first.
 */
export function readRecordOrOccupant(file: string): { text: string; stat: BigIntStats } | null | typeof OCCUPIED {
  let fd: number;
  try {
    fd = openSync(file, READ_WITHOUT_WAITING | NOFOLLOW);
  } catch (e) {
    if (isErrno(e, 'ENOENT', 'ENOTDIR')) return null;
    // ELOOP: a symlink (not followed); ENXIO: a socket; EISDIR: a folder, where opening one fails.
    if (isErrno(e, 'ELOOP', 'ENXIO', 'EISDIR')) return OCCUPIED;
    throw e;
  }
  try {
    const stat = fstatSync(fd, { bigint: true });
    if (!stat.isFile()) return OCCUPIED;
    return { text: readFileSync(fd, 'utf8'), stat };
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether nothing holds `file`'s name, asked without opening it: most writes name a new
 * record, and a failed open throws, which costs ~10 µs here (the error's stack and
 * message) against ~2 µs for an lstat that says so. False when unsure: the caller reads.
 */
export function nothingAt(file: string): boolean {
  try {
    return lstatSync(file, { throwIfNoEntry: false }) === undefined;
  } catch {
    return false;
  }
}

export class TableCache {
  /** Keyed by table directory; Map order doubles as least-recently-used order. */
  private readonly tables = new Map<string, CachedTable>();
  private readonly gens = new Map<string, number>();
  /** Index paths declared per table directory (ensureIndex), by pathKey. */
  private readonly declared = new Map<string, Map<string, FieldPath>>();
  private readonly watcher: Watcher | null;

  constructor(options: { maxTables?: number; watch?: boolean } = {}) {
    this.maxTables = options.maxTables ?? 64;
    this.watcher = options.watch === false ? null : new Watcher();
  }

  private readonly maxTables: number;

  /** For tests of the fallback paths. */
  get watching(): Watcher | null {
    return this.watcher;
  }

  /** The store wrote these files (or, without `files`, the whole table changed). */
  invalidate(dir: string, files?: Iterable<string>): void {
    this.gens.set(dir, (this.gens.get(dir) ?? 0) + 1);
    const t = this.tables.get(dir);
    if (!t) return;
    if (!files) {
      this.forget(dir);
      return;
    }
    for (const f of files) {
      this.dropEntry(t, f);
      t.watch?.dirty.add(f);
    }
  }

  /** An equality index on `path` is wanted (built at the table's next load). */
  declareIndex(dir: string, path: FieldPath): void {
    let m = this.declared.get(dir);
    if (!m) this.declared.set(dir, (m = new Map()));
    m.set(pathKey(path), path);
  }

  clear(): void {
    for (const dir of [...this.tables.keys()]) this.forget(dir);
    this.gens.clear();
  }

  close(): void {
    this.clear();
    this.watcher?.close();
  }

  /**
   * Resolves true when the table's watch can be trusted for this query: every change
   * completed before the call has been reported. False means "sweep" (unwatched).
   * Call before waiting for the store's readers' gate, then pass the result to select.
   */
  async barrier(dir: string): Promise<boolean> {
    const t = this.tables.get(dir);
    if (!this.watcher || !t?.watch || t.watch.dead) return false;
    return this.watcher.barrier();
  }

  /**
   * Records that may match `where` (every one that does, and perhaps others: the
   * caller filters). The array and its objects are shared with the cache: callers
   * must not mutate them (the store copies results).
   */
  select(dir: string, where: Condition, watched: boolean): readonly StoredRecord[] {
    const t = this.sync(dir, watched);
    if (!t) return [];
    for (const path of equalityPaths(where)) {
      if (t.indexes.size >= MAX_INDEXES) break;
      const k = pathKey(path);
      if (!t.indexes.has(k)) t.indexes.set(k, buildIndex(path, t.files));
    }
    const c = candidates(where, t.indexes);
    if (!c) return this.recordsOf(t);
    const out: StoredRecord[] = [];
    for (const e of c) out.push(e.record);
    return out;
  }

  /** Every record of a table, in no particular order (shared, as for select). */
  load(dir: string, watched = false): readonly StoredRecord[] {
    const t = this.sync(dir, watched);
    return t ? this.recordsOf(t) : [];
  }

  private recordsOf(t: CachedTable): StoredRecord[] {
    if (!t.records) t.records = Array.from(t.files.values(), (e) => e.record);
    return t.records;
  }

  /** Brings the table up to date with the disk; null if it has no directory. */
  private sync(dir: string, watched: boolean): CachedTable | null {
    let dirStat: BigIntStats | undefined;
    try {
      dirStat = lstatSync(dir, { bigint: true, throwIfNoEntry: false });
    } catch (e) {
      if (!isErrno(e, 'ENOTDIR')) throw e;
    }
    if (!dirStat || !dirStat.isDirectory()) {
      this.forget(dir);
      return null;
    }
    const gen = this.gens.get(dir) ?? 0;
    const cached = this.tables.get(dir);
    const sameDir = cached !== undefined && cached.dirIno === dirStat.ino && cached.dirDev === dirStat.dev;
    let table: CachedTable;
    if (sameDir && watched && cached.watch && !cached.watch.dead) {
      table = this.catchUp(dir, cached, gen);
    } else {
      let watch = sameDir ? cached.watch : null;
      if (!sameDir && cached) this.forget(dir);
      if (!watch || watch.dead) {
        // Before reading anything: a change made while we read is then reported.
        watch = this.watcher?.watch(dir) ?? null;
      }
      if (sameDir && cached.gen === gen && !cached.dirRacy && cached.dirMtimeNs === dirStat.mtimeNs) {
        table = this.refresh(dir, cached) ?? this.scan(dir, gen, dirStat, cached.files);
      } else {
        table = this.scan(dir, gen, dirStat, sameDir ? cached.files : undefined);
      }
      // Everything was just checked against the disk.
      if (table.watch && table.watch !== watch) table.watch.close();
      table.watch = watch;
      if (watch) {
        watch.dirty.clear();
        watch.all = false;
      }
    }
    this.tables.delete(dir);
    this.tables.set(dir, table);
    if (this.tables.size > this.maxTables) this.forget(this.tables.keys().next().value!);
    return table;
  }

  /** A watched table: re-reads what was reported, and re-stats multiply-linked files. */
  private catchUp(dir: string, t: CachedTable, gen: number): CachedTable {
    const w = t.watch!;
    if (w.all) {
      const dirStat = lstatSync(dir, { bigint: true });
      const fresh = this.scan(dir, gen, dirStat, t.files);
      fresh.watch = w;
      // Cleared only once the scan got through: a broken file keeps failing, as it should.
      w.dirty.clear();
      w.all = false;
      return fresh;
    }
    for (const name of [...w.dirty]) {
      if (idFromFileName(name) !== null) this.reread(dir, t, name);
      w.dirty.delete(name);
    }
    for (const name of [...t.linked]) {
      const entry = t.files.get(name);
      const st = lstatSync(join(dir, name), { bigint: true, throwIfNoEntry: false });
      if (!entry || !st || !sameFile(entry, st)) this.reread(dir, t, name);
    }
    // Not dirMtimeNs: that stays the mtime of the last listing actually read, so a
    // later sweep (if the watch fails) does not trust a listing it did not check.
    t.gen = gen;
    return t;
  }

  private reread(dir: string, t: CachedTable, name: string): void {
    const fresh = this.read(dir, name);
    this.dropEntry(t, name);
    if (fresh) this.putEntry(t, name, fresh);
  }

  private putEntry(t: CachedTable, name: string, e: FileEntry): void {
    t.files.set(name, e);
    for (const ix of t.indexes.values()) ix.add(e);
    if (e.nlink > 1n) t.linked.add(name);
    t.records = null;
  }

  private dropEntry(t: CachedTable, name: string): void {
    const old = t.files.get(name);
    if (!old) return;
    t.files.delete(name);
    for (const ix of t.indexes.values()) ix.remove(old);
    t.linked.delete(name);
    t.records = null;
  }

  private forget(dir: string): void {
    const t = this.tables.get(dir);
    if (!t) return;
    t.watch?.close();
    this.tables.delete(dir);
  }

  /** Same listing: re-reads files edited in place; null if a file vanished (rescan). */
  private refresh(dir: string, t: CachedTable): CachedTable | null {
    for (const [name, entry] of [...t.files]) {
      const st = lstatSync(join(dir, name), { bigint: true, throwIfNoEntry: false });
      if (!st || !st.isFile()) return null;
      if (sameFile(entry, st)) continue;
      const fresh = this.read(dir, name);
      if (!fresh) return null;
      this.dropEntry(t, name);
      this.putEntry(t, name, fresh);
    }
    return t;
  }

  private scan(dir: string, gen: number, dirStat: BigIntStats, previous?: Map<string, FileEntry>): CachedTable {
    const files = new Map<string, FileEntry>();
    const linked = new Set<string>();
    for (const dirent of readdirSync(dir, { withFileTypes: true })) {
      if (!dirent.isFile()) continue;
      const id = idFromFileName(dirent.name);
      if (id === null) continue; // temp files, editor backups, anything not a canonical record name
      let entry: FileEntry | null = null;
      const old = previous?.get(dirent.name);
      if (old) {
        const st = lstatSync(join(dir, dirent.name), { bigint: true, throwIfNoEntry: false });
        if (!st) continue; // deleted since the listing
        if (sameFile(old, st)) entry = old;
      }
      entry ??= this.read(dir, dirent.name);
      if (!entry) continue;
      files.set(dirent.name, entry);
      if (entry.nlink > 1n) linked.add(dirent.name);
    }
    const indexes = new Map<string, EqIndex<FileEntry>>();
    const wanted = new Map([...(this.tables.get(dir)?.indexes ?? new Map<string, EqIndex<FileEntry>>()).entries()].map(([k, ix]) => [k, ix.path]));
    for (const [k, path] of this.declared.get(dir) ?? []) wanted.set(k, path);
    for (const [k, path] of wanted) indexes.set(k, buildIndex(path, files));
    return {
      gen,
      dirMtimeNs: dirStat.mtimeNs,
      dirRacy: isRacy(dirStat.mtimeNs),
      dirIno: dirStat.ino,
      dirDev: dirStat.dev,
      files,
      records: null,
      indexes,
      linked,
      watch: this.tables.get(dir)?.watch ?? null,
    };
  }

  private read(dir: string, name: string): FileEntry | null {
    const file = join(dir, name);
    const got = readRecordFile(file);
    if (!got) return null;
    const id = idFromFileName(name);
    if (got.record._id !== id) {
      // The file name is the id (that is how `get` finds it); a record disagreeing with
      // its name was renamed or edited by hand, and guessing which is right would hide it.
      throw new FreeholdError('internal', `Record file ${file} holds _id ${JSON.stringify(got.record._id)}, but its name says ${JSON.stringify(id)}`);
    }
    const st = got.stat;
    return { ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, nlink: st.nlink, racy: isRacy(st.mtimeNs), record: got.record };
  }
}

function buildIndex(path: FieldPath, files: ReadonlyMap<string, FileEntry>): EqIndex<FileEntry> {
  const ix = new EqIndex<FileEntry>(path);
  for (const e of files.values()) ix.add(e);
  return ix;
}
