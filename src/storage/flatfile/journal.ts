import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile, rename, rmdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FreeholdError } from '../../core/errors.js';
import { READ_WITHOUT_WAITING } from '../open-flags.js';
import type { Change } from '../types.js';
import { changeLine } from './changelog.js';
import type { PlannedWrite } from './plan.js';
import { DIR_MODE, FILE_MODE, fsyncDir, fsyncFile, isErrno, truncateDurably, unlinkIfExists, writeFileAtomic } from './fsutil.js';
import type { FlatFilePaths } from './paths.js';

/**
 * The per-owner write-ahead journal: `<owner>/_journal.json` and `_journal2.json`,
 * used in turn. Every unit (a group of writes, or one dropTable) follows one protocol:
 *
 *   1. stage: each new record text goes to a temp file beside its record (no fsync);
 *   2. COMMIT: append one entry to the active journal file (the unit's changes, the
 *      new text of every record it writes and the old text it replaces, the change
 *      log's size before) and fdatasync it. The unit is committed when this returns;
 *   3. apply: rename/link the temp files into place, unlink deletions, append the
 *      change lines to `_changes.jsonl`, all without fsync, while readers wait (so
 *      they see all of the unit or none of it). Then acknowledge.
 *   4. checkpoint, later, in the background, for all units since the last one: switch
 *      appends to the other journal file, fsync every record file and directory those
 *      units touched and the change log, then truncate the old journal file to zero.
 *
 * Acknowledging at step 2 is what makes writes fast: one fdatasync on the critical
 * path, shared by every write that queued meanwhile (group commit), instead of four
 * rounds. It is safe because recovery ROLLS FORWARD: whatever the journal files hold
 * after a crash is the durable truth, and `rollForward` rewrites record files and
 * change lines from it, idempotently (a crash during recovery is recovered by the
 * next open). The second journal file means a unit never waits for a checkpoint's
 * truncation: the files are only switched between units.
 *
 * Entries are framed: a line `{"bytes":N,"sha256":"…"}`, then N bytes of JSON. An
 * entry torn by a crash during step 2 fails its frame, was never acknowledged, and
 * is discarded with everything after it (there is nothing after it: units are
 * serialised and each waits for its own append).
 *
 * A unit that fails after its entry became durable (step 3 failing: a file created
 * behind the store's back, disk errors) must never be rolled forward later, since
 * its callers get an error: the store restores the old record texts (durably), cuts
 * the change log back, and only then truncates the entry off the journal (`revoke`);
 * only after that is the error reported. If that cannot be done, the store rolls the
 * journal forward instead and reports what it then finds (record-store.ts).
 *
 * The calls of steps 1 and 3 and the journal's write (create, write and link the
 * files, append to the journal and the change log) are made on the event loop's
 * thread: they touch only the page cache, a few µs each on a local disk, whereas a
 * trip through the thread pool costs a loop turn, about a millisecond on a busy
 * server, and a unit made a dozen such trips in turn (measured: staging 16 records
 * took ~4 ms that way, ~0.3 ms in place). Only the syncs (step 2's, the checkpoint's)
 * wait off the thread.
 *
 * Hand edits. Roll-forward rewrites a record only when its file holds a version this
 * journal knows for it (its text before the first journalled write, or any text a
 * journalled write gave it), is missing, or shows a rename whose data a power loss
 * did not keep whole: the file is empty, holds NUL bytes (pages never written), or
 * holds the start of a journalled text. A file holding anything else was edited by
 * hand after the write: it is left alone. The one hand change recovery can undo is a
 * record deleted by hand in the moment between a write's acknowledgement and its
 * checkpoint.
 *
 * Version 1 journals (one entry plus a trailer, undone rather than redone) may be
 * left by an older freehold that crashed; they are still rolled back at open.
 */

export const JOURNAL_VERSION = 2;

export interface TextImage {
  table: string;
  id: string;
  /** The record file's exact text; null: absent (for `writes`, a delete). */
  text: string | null;
}

interface EntryBase {
  version: typeof JOURNAL_VERSION;
  /** Change log size in bytes before the unit. */
  changesOffset: number;
  /** Last seq before the unit. */
  seqBefore: number;
  changes: Change[];
}

export interface WriteEntry extends EntryBase {
  kind: 'write';
  /** Final text of every record the unit writes. */
  writes: TextImage[];
  /** Text of the same records before the unit. */
  before: TextImage[];
}

export interface DropEntry extends EntryBase {
  kind: 'drop';
  table: string;
  /** Name of the trash directory (in the owner directory) the table is moved to. */
  trash: string;
}

export type Entry = WriteEntry | DropEntry;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** One entry as the bytes appended to a journal file: frame line, then the JSON. */
export function frameEntry(json: string): Buffer {
  const body = Buffer.from(json.endsWith('\n') ? json : json + '\n');
  return Buffer.concat([Buffer.from(JSON.stringify({ bytes: body.length, sha256: sha256(body) }) + '\n'), body]);
}

/** The write entry as JSON. Texts are kept as strings: recovery compares them byte for byte. */
export function buildWriteEntry(changesOffset: number, seqBefore: number, changes: Change[], writes: PlannedWrite[]): string {
  const image = (table: string, id: string, text: string | null) => ({ table, id, text });
  return JSON.stringify({
    version: JOURNAL_VERSION, kind: 'write', changesOffset, seqBefore, changes,
    writes: writes.map((w) => image(w.table, w.id, w.text)),
    before: writes.map((w) => image(w.table, w.id, w.before)),
  }) + '\n';
}

/** What an owner's journal files hold: committed entries (in order), or a legacy version 1 journal. */
export interface JournalContents {
  entries: Entry[];
  legacy: LegacyJournal | null;
}

/** Reads both journal files. Torn tails are ignored (never acknowledged); the caller empties the files after recovery. */
export async function readJournals(paths: FlatFilePaths, owner: string): Promise<JournalContents> {
  const entries: Entry[] = [];
  let legacy: LegacyJournal | null = null;
  for (const file of paths.journals(owner)) {
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (e) {
      if (isErrno(e, 'ENOENT', 'ENOTDIR')) continue;
      throw e;
    }
    if (data.length === 0) continue;
    const framed = parseFrames(data, file);
    if (framed) entries.push(...framed);
    else legacy ??= parseLegacy(data, file);
  }
  entries.sort((a, b) => a.seqBefore - b.seqBefore);
  for (let i = 1; i < entries.length; i++) {
    const prev = entries[i - 1]!;
    if (entries[i]!.seqBefore !== prev.seqBefore + prev.changes.length) {
      throw new FreeholdError('internal', `Write journal of ${owner} is not contiguous (seq ${prev.seqBefore + prev.changes.length} then ${entries[i]!.seqBefore})`);
    }
  }
  return { entries, legacy };
}

/** The entries of one journal file up to the first torn one; null if it is not in the framed format. */
function parseFrames(data: Buffer, file: string): Entry[] | null {
  const out: Entry[] = [];
  let pos = 0;
  while (pos < data.length) {
    const nl = data.indexOf(0x0a, pos);
    if (nl === -1) break;
    let frame: { bytes?: unknown; sha256?: unknown };
    try {
      frame = JSON.parse(data.toString('utf8', pos, nl)) as { bytes?: unknown; sha256?: unknown };
    } catch {
      if (pos === 0) return null;
      break;
    }
    if (typeof frame !== 'object' || frame === null || typeof frame.bytes !== 'number' || typeof frame.sha256 !== 'string') {
      if (pos === 0) return null;
      break;
    }
    const body = data.subarray(nl + 1, nl + 1 + frame.bytes);
    if (body.length !== frame.bytes || sha256(body) !== frame.sha256) break;
    const e = JSON.parse(body.toString('utf8')) as Partial<Entry>;
    if (e.version !== JOURNAL_VERSION || (e.kind !== 'write' && e.kind !== 'drop') || typeof e.changesOffset !== 'number' || typeof e.seqBefore !== 'number') {
      throw new FreeholdError('internal', `Write journal ${file} has an unknown format (version ${String(e.version)})`);
    }
    out.push(e as Entry);
    pos = nl + 1 + frame.bytes;
  }
  return out;
}

/**
 * Redoes committed entries (see above) and makes the result durable: record files,
 * directories, the change log. The caller then empties the journal files. Idempotent.
 */
export async function rollForward(paths: FlatFilePaths, owner: string, entries: Entry[]): Promise<void> {
  if (entries.length === 0) return;
  const ownerDir = paths.owner(owner);
  const dirs = new Set<string>([ownerDir]);
  let records = new Map<string, { final: string | null; known: Set<string | null> }>();
  const settle = async () => {
    for (const [file, r] of records) {
      dirs.add(dirname(file));
      await redoRecord(file, r.final, r.known);
    }
    records = new Map();
  };
  for (const e of entries) {
    if (e.kind === 'write') {
      e.writes.forEach((w, i) => {
        const file = paths.record(owner, w.table, w.id);
        const r = records.get(file) ?? { final: null, known: new Set([e.before[i]?.text ?? null]) };
        r.known.add(w.text);
        r.final = w.text;
        records.set(file, r);
      });
    } else {
      // Nothing later can be journalled before a drop's own checkpoint, so a drop is last; settle what came before it anyway.
      await settle();
      const trash = join(ownerDir, e.trash);
      if (!(await exists(trash)) && (await exists(paths.table(owner, e.table)))) await rename(paths.table(owner, e.table), trash);
    }
  }
  await settle();
  for (const dir of dirs) await fsyncDir(dir).catch((err: unknown) => (isErrno(err, 'ENOENT') ? undefined : Promise.reject(err)));
  await rewriteChanges(paths.changes(owner), entries);
}

/** Puts one record's final journalled text in place, unless a hand edit replaced what the journal knows. */
async function redoRecord(file: string, final: string | null, known: Set<string | null>): Promise<void> {
  let current: string | null;
  try {
    // Without blocking: a named pipe under the name reads as empty, and the record is put back.
    const fd = openSync(file, READ_WITHOUT_WAITING);
    try {
      current = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if (!isErrno(e, 'ENOENT', 'ENOTDIR')) throw e;
    current = null;
  }
  // A power loss can keep a rename but not all the data behind it: an empty file, a text
  // with zeros where pages were not written, or one cut short where its size was not kept.
  // No hand edit looks like that: JSON holds no NUL byte, and no one saves half a text.
  const lost = current === null || current.includes('\0') || [...known].some((k) => k !== null && k.startsWith(current));
  if (current === final) {
    if (final !== null) await fsyncFile(file); // in the page cache after a kill -9, maybe not yet on disk
    return;
  }
  if (!lost && !known.has(current)) return; // edited by hand since: not ours to overwrite
  if (final === null) {
    await unlinkIfExists(file);
  } else {
    await mkdir(dirname(file), { recursive: true, mode: DIR_MODE });
    await writeFileAtomic(file, final);
  }
}

/** Cuts the change log back to the first entry's offset and writes the entries' lines again, durably. */
async function rewriteChanges(file: string, entries: Entry[]): Promise<void> {
  const offset = entries[0]!.changesOffset;
  const fh = await open(file, 'a+', FILE_MODE);
  try {
    const size = (await fh.stat()).size;
    if (size < offset) throw new FreeholdError('internal', `Change log ${file} is shorter (${size} bytes) than its journal expects (${offset})`);
    await fh.truncate(offset);
    const lines = entries.flatMap((e) => e.changes.map(changeLine)).join('');
    if (lines) await fh.writeFile(lines, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Restores the old texts of the records a failed unit touched, and cuts the change
 * log back to its size before the unit, durably: the first half of revoking a
 * committed entry (the store then truncates the entry off the journal).
 */
export async function restoreBefore(paths: FlatFilePaths, owner: string, before: TextImage[], changesOffset: number): Promise<void> {
  const dirs = new Set<string>([paths.owner(owner)]);
  for (const b of before) {
    const file = paths.record(owner, b.table, b.id);
    dirs.add(dirname(file));
    if (b.text !== null) {
      await mkdir(dirname(file), { recursive: true, mode: DIR_MODE });
      await writeFileAtomic(file, b.text);
    } else {
      await unlinkIfExists(file);
    }
  }
  for (const dir of dirs) await fsyncDir(dir).catch((e: unknown) => (isErrno(e, 'ENOENT') ? undefined : Promise.reject(e)));
  await truncateDurably(paths.changes(owner), changesOffset);
}

// --- version 1: written by older freehold; rolled back, never forward ---

export type LegacyJournal =
  | { version: 1; kind: 'write'; changesOffset: number; before: Array<{ table: string; id: string; record: unknown; text?: string }> }
  | { version: 1; kind: 'drop'; changesOffset: number; table: string; trash: string };

/** A version 1 journal (body, then a trailer line over it). A torn one had not been applied: null. */
function parseLegacy(data: Buffer, file: string): LegacyJournal | null {
  const complete = data.at(-1) === 0x0a && data.length >= 2;
  const bodyEnd = complete ? data.lastIndexOf(0x0a, data.length - 2) + 1 : 0;
  let trailer: { bytes?: unknown; sha256?: unknown } | null;
  try {
    trailer = JSON.parse(data.toString('utf8', bodyEnd)) as { bytes?: unknown; sha256?: unknown };
  } catch {
    trailer = null;
  }
  const body = data.subarray(0, bodyEnd);
  if (bodyEnd === 0 || !trailer || trailer.bytes !== body.length || trailer.sha256 !== sha256(body)) return null;
  const j = JSON.parse(body.toString('utf8')) as Partial<LegacyJournal>;
  if (j.version !== 1 || (j.kind !== 'write' && j.kind !== 'drop') || typeof j.changesOffset !== 'number') {
    throw new FreeholdError('internal', `Write journal ${file} has an unknown format (version ${String(j.version)})`);
  }
  return j as LegacyJournal;
}

/** Undoes a version 1 journal's unit: it never committed (its commit was the journal's truncation). */
export async function rollBackLegacy(paths: FlatFilePaths, owner: string, journal: LegacyJournal): Promise<void> {
  if (journal.kind === 'write') {
    const before = journal.before.map((b) => ({
      table: b.table, id: b.id,
      text: typeof b.text === 'string' ? b.text : b.record === null || b.record === undefined ? null : JSON.stringify(b.record, null, 2) + '\n',
    }));
    await restoreBefore(paths, owner, before, journal.changesOffset);
    return;
  }
  const trash = join(paths.owner(owner), journal.trash);
  if (await exists(trash)) {
    try {
      await rmdir(paths.table(owner, journal.table)); // never a table with records in it
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e;
    }
    await rename(trash, paths.table(owner, journal.table));
  }
  await truncateDurably(paths.changes(owner), journal.changesOffset);
  await fsyncDir(paths.owner(owner));
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
