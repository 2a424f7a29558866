import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { FreeholdError } from '../../core/errors.js';
import type { StoredRecord } from '../types.js';
import { isErrno } from './fsutil.js';
import { parseRecord } from './format.js';
import { idFromFileName } from './paths.js';

/**
 * Parsed records per table directory, so a query does not re-read and re-parse every
 * file each time. An entry is trusted only while
 *   - the table's generation is unchanged (bumped by the store's own writes, which
 *     also forget the exact files they wrote: timestamps are too coarse, and inode
 *     numbers are recycled, to tell two quick writes of one file apart), and
 *   - the directory's mtime is unchanged (a file added, removed or renamed, e.g. by
 *     hand; otherwise the listing is reused), and
 *   - each file's inode, size and mtime are unchanged (an edit in place, e.g. `vi`).
 * So a query costs a stat per file, and re-reads only files that changed.
 *
 * File system timestamps are coarse (a few ms on Linux, up to 2 s elsewhere), so a
 * second change within the same tick leaves the mtime as it was. As git does with
 * its index, a timestamp that was recent when we looked is not trusted: a directory
 * or file whose mtime was within RACY_NS of the clock when we read it is re-read
 * next time, until it has aged. Hand edits are therefore seen by the next query.
 *
 * Reads here are synchronous on purpose: the store makes readers wait while a unit is
 * being applied, and a read that never yields cannot interleave with the next one.
 */

interface FileEntry {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  /** The mtime was too recent to prove a later change would alter it: re-read next time. */
  racy: boolean;
  record: StoredRecord;
}

interface CachedTable {
  gen: number;
  dirMtimeNs: bigint;
  /** As FileEntry.racy, for the listing. */
  dirRacy: boolean;
  files: Map<string, FileEntry>;
  records: StoredRecord[];
}

const NOFOLLOW = constants.O_NOFOLLOW ?? 0;
/** Larger than any common timestamp granularity (FAT: 2 s), plus clock slack. */
const RACY_NS = 3_000_000_000n;

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
  const got = readRecordText(file);
  return got && { record: parseRecord(got.text, file), stat: got.stat };
}

/** The raw text of a record file (regular files only, symlinks not followed); null if absent. */
export function readRecordText(file: string): { text: string; stat: BigIntStats } | null {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | NOFOLLOW);
  } catch (e) {
    if (isErrno(e, 'ENOENT', 'ENOTDIR', 'ELOOP', 'EISDIR')) return null;
    throw e;
  }
  try {
    const stat = fstatSync(fd, { bigint: true });
    if (!stat.isFile()) return null;
    return { text: readFileSync(fd, 'utf8'), stat };
  } finally {
    closeSync(fd);
  }
}

export class TableCache {
  /** Keyed by table directory; Map order doubles as least-recently-used order. */
  private readonly tables = new Map<string, CachedTable>();
  private readonly gens = new Map<string, number>();

  constructor(private readonly maxTables = 64) {}

  /** The store wrote these files (or, without `files`, the whole table changed). */
  invalidate(dir: string, files?: Iterable<string>): void {
    this.gens.set(dir, (this.gens.get(dir) ?? 0) + 1);
    const t = this.tables.get(dir);
    if (!t) return;
    if (!files) this.tables.delete(dir);
    else for (const f of files) t.files.delete(f);
  }

  clear(): void {
    this.tables.clear();
    this.gens.clear();
  }

  /**
   * Every record of a table, in no particular order. The array and its objects are
   * shared with the cache: callers must not mutate them (the store copies results).
   */
  load(dir: string): readonly StoredRecord[] {
    let dirStat: BigIntStats | undefined;
    try {
      dirStat = lstatSync(dir, { bigint: true, throwIfNoEntry: false });
    } catch (e) {
      if (!isErrno(e, 'ENOTDIR')) throw e;
    }
    if (!dirStat || !dirStat.isDirectory()) {
      this.tables.delete(dir);
      return [];
    }
    const gen = this.gens.get(dir) ?? 0;
    const cached = this.tables.get(dir);
    let table: CachedTable;
    if (cached && cached.gen === gen && !cached.dirRacy && cached.dirMtimeNs === dirStat.mtimeNs) {
      table = this.refresh(dir, cached) ?? this.scan(dir, gen, dirStat.mtimeNs, cached.files);
    } else {
      table = this.scan(dir, gen, dirStat.mtimeNs, cached?.files);
    }
    this.tables.delete(dir);
    this.tables.set(dir, table);
    if (this.tables.size > this.maxTables) this.tables.delete(this.tables.keys().next().value!);
    return table.records;
  }

  /** Same listing: re-reads files edited in place; null if a file vanished (rescan). */
  private refresh(dir: string, t: CachedTable): CachedTable | null {
    let changed = false;
    for (const [name, entry] of t.files) {
      const st = lstatSync(join(dir, name), { bigint: true, throwIfNoEntry: false });
      if (!st || !st.isFile()) return null;
      if (sameFile(entry, st)) continue;
      const fresh = this.read(dir, name);
      if (!fresh) return null;
      t.files.set(name, fresh);
      changed = true;
    }
    if (changed) t.records = [...t.files.values()].map((e) => e.record);
    return t;
  }

  private scan(dir: string, gen: number, dirMtimeNs: bigint, previous?: Map<string, FileEntry>): CachedTable {
    const files = new Map<string, FileEntry>();
    for (const dirent of readdirSync(dir, { withFileTypes: true })) {
      if (!dirent.isFile()) continue;
      const id = idFromFileName(dirent.name);
      if (id === null) continue; // temp files, editor backups, anything not a canonical record name
      const old = previous?.get(dirent.name);
      if (old) {
        const st = lstatSync(join(dir, dirent.name), { bigint: true, throwIfNoEntry: false });
        if (!st) continue; // deleted since the listing
        if (sameFile(old, st)) {
          files.set(dirent.name, old);
          continue;
        }
      }
      const entry = this.read(dir, dirent.name);
      if (!entry) continue;
      files.set(dirent.name, entry);
    }
    return { gen, dirMtimeNs, dirRacy: isRacy(dirMtimeNs), files, records: [...files.values()].map((e) => e.record) };
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
    return { ino: got.stat.ino, size: got.stat.size, mtimeNs: got.stat.mtimeNs, racy: isRacy(got.stat.mtimeNs), record: got.record };
  }
}
