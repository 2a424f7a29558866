import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rmdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FreeholdError } from '../../core/errors.js';
import type { Change } from '../types.js';
import type { PlannedWrite } from './plan.js';
import { DIR_MODE, FILE_MODE, fsyncDir, isErrno, truncateDurably, unlinkIfExists, writeFileAtomic } from './fsutil.js';
import type { FlatFilePaths } from './paths.js';

/**
 * The per-owner write-ahead journal, `<owner>/_journal.json`.
 *
 * The file stays in place and is EMPTY whenever no write is in flight. Every write
 * (single or batch, grouped into one "unit") follows one protocol:
 *   1. write the journal: the intended writes, the old version of every record
 *      touched, the change lines to append and the change log's size before, as one
 *      JSON line, then a trailer line `{"bytes":…,"sha256":…}` over the first;
 *      fsync. Nothing is applied before this fsync returns.
 *   2. apply: record files (atomic replace or unlink; directories fsynced), then
 *      append the change lines to `_changes.jsonl` and fsync it;
 *   3. commit: truncate the journal to zero bytes and fsync it.
 *
 * The journal is rewritten in place rather than renamed into place because creating
 * a file and fsyncing its directory costs several times more than rewriting an
 * existing one. The trailer is what makes that safe: a journal torn by a crash
 * during step 1 fails its checksum, and since nothing had been applied, it is simply
 * discarded.
 *
 * The commit point is the truncation. A complete journal found later (after a
 * crash, or after a failed apply whose rollback also failed) means the unit never
 * committed, and nobody was told it succeeded, so recovery ROLLS IT BACK: restores
 * the old versions, cuts the change log back to its old size, empties the journal.
 * Rolling back (not forward) is the one rule that is right in every case, including
 * the in-process one where the caller was already given an error. Rollback is
 * idempotent, so a crash during recovery is recovered by the next open.
 *
 * A dropTable unit renames the whole table directory into `<owner>/.trash-…`
 * (one atomic step) instead of journalling every record; its rollback renames it
 * back. After commit the trash is deleted; leftovers are removed at open.
 */

export const JOURNAL_VERSION = 1;

export interface RecordImage {
  table: string;
  id: string;
  /** The record's JSON; null: absent (for `writes`, a delete). */
  record: unknown;
  /** Instead of `record`: the old file's exact text, when it was not valid JSON (a broken hand edit). */
  text?: string;
}

interface JournalBase {
  version: typeof JOURNAL_VERSION;
  /** Change log size in bytes before the unit: rollback truncates to it. */
  changesOffset: number;
  /** Last seq before the unit. */
  seqBefore: number;
  changes: Change[];
}

export interface WriteJournal extends JournalBase {
  kind: 'write';
  /** Final state of every record the unit writes (for people reading the file; rollback does not need it). */
  writes: RecordImage[];
  /** State of the same records before the unit. */
  before: RecordImage[];
}

export interface DropJournal extends JournalBase {
  kind: 'drop';
  table: string;
  /** Name of the trash directory (in the owner directory) the table is moved to. */
  trash: string;
}

export type Journal = WriteJournal | DropJournal;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Writes the journal (step 1). `json` is the journal as one line of JSON; the store
 * builds it by splicing record texts it already has, rather than parsing and
 * re-serialising every record.
 */
export async function writeJournal(paths: FlatFilePaths, owner: string, json: string): Promise<void> {
  const body = Buffer.from(json.endsWith('\n') ? json : json + '\n');
  const data = Buffer.concat([body, Buffer.from(JSON.stringify({ bytes: body.length, sha256: sha256(body) }) + '\n')]);
  const file = paths.journal(owner);
  let fh;
  let created = false;
  try {
    fh = await open(file, 'r+');
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw e;
    // A new owner: its directory entry must be durable too, before anything relies on it.
    if (await mkdir(paths.owner(owner), { recursive: true, mode: DIR_MODE })) await fsyncDir(paths.root);
    fh = await open(file, 'w+', FILE_MODE);
    created = true;
  }
  try {
    await fh.write(data, 0, data.length, 0);
    await fh.truncate(data.length);
    await fh.sync();
  } finally {
    await fh.close();
  }
  if (created) await fsyncDir(paths.owner(owner));
}

/** Commits the unit (step 3). */
export async function commitJournal(paths: FlatFilePaths, owner: string): Promise<void> {
  await truncateDurably(paths.journal(owner), 0);
}

/**
 * The uncommitted unit left in an owner's journal, or null if there is none. A
 * journal failing its trailer check was torn while being written (step 1), before
 * anything was applied: it is emptied and ignored.
 */
export async function readJournal(paths: FlatFilePaths, owner: string): Promise<Journal | null> {
  const file = paths.journal(owner);
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (e) {
    if (isErrno(e, 'ENOENT', 'ENOTDIR')) return null;
    throw e;
  }
  if (data.length === 0) return null;
  // The body may span lines (it embeds pretty-printed records); the trailer is the last line.
  const complete = data.at(-1) === 0x0a && data.length >= 2;
  const bodyEnd = complete ? data.lastIndexOf(0x0a, data.length - 2) + 1 : 0;
  let trailer: { bytes?: unknown; sha256?: unknown } | null = null;
  try {
    trailer = JSON.parse(data.toString('utf8', bodyEnd)) as { bytes?: unknown; sha256?: unknown };
  } catch {
    trailer = null;
  }
  const body = data.subarray(0, bodyEnd);
  if (bodyEnd === 0 || !trailer || trailer.bytes !== body.length || trailer.sha256 !== sha256(body)) {
    await commitJournal(paths, owner);
    return null;
  }
  const j = JSON.parse(body.toString('utf8')) as Partial<Journal>;
  if (j.version !== JOURNAL_VERSION || (j.kind !== 'write' && j.kind !== 'drop') || typeof j.changesOffset !== 'number') {
    throw new FreeholdError('internal', `Write journal ${file} has an unknown format (version ${String(j.version)})`);
  }
  return j as Journal;
}

/** Undoes an uncommitted unit (see above) and empties its journal. Idempotent. */
export async function rollBack(paths: FlatFilePaths, owner: string, journal: Journal): Promise<void> {
  const ownerDir = paths.owner(owner);
  if (journal.kind === 'write') {
    const dirs = new Set<string>();
    for (const b of journal.before) {
      const file = paths.record(owner, b.table, b.id);
      dirs.add(dirname(file));
      if (typeof b.text === 'string' || (b.record !== null && b.record !== undefined)) {
        await mkdir(dirname(file), { recursive: true, mode: DIR_MODE });
        await writeFileAtomic(file, typeof b.text === 'string' ? b.text : JSON.stringify(b.record, null, 2) + '\n');
      } else {
        await unlinkIfExists(file);
      }
    }
    for (const dir of dirs) await fsyncDir(dir).catch((e: unknown) => (isErrno(e, 'ENOENT') ? undefined : Promise.reject(e)));
  } else {
    const trash = join(ownerDir, journal.trash);
    if (await exists(trash)) {
      // Drop units run alone, so nothing can have recreated the table since the move;
      // rmdir (not rm -r) makes sure that if something did, it is never deleted.
      try {
        await rmdir(paths.table(owner, journal.table));
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw e;
      }
      await rename(trash, paths.table(owner, journal.table));
    }
  }
  await truncateDurably(paths.changes(owner), journal.changesOffset);
  await fsyncDir(ownerDir);
  await commitJournal(paths, owner);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return false;
    throw e;
  }
}

/**
 * The journal as JSON, built by splicing record texts that are already JSON (they
 * were serialised by us, or read from disk and checked to parse) instead of parsing
 * and re-serialising every record.
 */
export function buildWriteJournal(changesOffset: number, seqBefore: number, changes: Change[], writes: PlannedWrite[]): string {
  const image = (table: string, id: string, text: string | null, ours: boolean): string => {
    const head = `{"table":${JSON.stringify(table)},"id":${JSON.stringify(id)},`;
    if (text === null) return head + '"record":null}';
    // Texts we serialised are JSON; a file from disk may be a broken hand edit, kept as a string.
    return ours || isJson(text) ? `${head}"record":${text}}` : `${head}"text":${JSON.stringify(text)}}`;
  };
  return (
    `{"version":1,"kind":"write","changesOffset":${changesOffset},"seqBefore":${seqBefore},` +
    `"changes":${JSON.stringify(changes)},` +
    `"writes":[${writes.map((w) => image(w.table, w.id, w.text, true)).join(',')}],` +
    `"before":[${writes.map((w) => image(w.table, w.id, w.before, false)).join(',')}]}\n`
  );
}

/** The old state of a written record, for an in-place rollback: its exact old text. */
export function beforeImage(w: PlannedWrite): RecordImage {
  if (w.before === null) return { table: w.table, id: w.id, record: null };
  return { table: w.table, id: w.id, record: null, text: w.before };
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
