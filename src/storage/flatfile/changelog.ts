import { appendFileSync, closeSync, fstatSync, ftruncateSync, fsyncSync, openSync, readSync } from 'node:fs';
import { FreeholdError } from '../../core/errors.js';
import type { Change } from '../types.js';
import { FILE_MODE, isErrno } from './fsutil.js';

/**
 * One owner's change log: `_changes.jsonl`, one JSON object per line
 * (`{"seq":1,"table":"…","id":"…","op":"put","at":1700000000000}`), seq strictly
 * increasing. Only the store appends to it, always inside a journalled unit: lines
 * are appended (not fsynced) once the unit's journal entry is durable, and fsynced by
 * the checkpoint that empties that journal. After a crash, recovery cuts the log back
 * to the first journalled unit's offset and writes the journalled lines again.
 *
 * Reading `changes(since)` must not rescan a long log every time, so the first read
 * scans the file once and keeps a sparse index (every MARK_EVERY-th line: its seq and
 * byte offset); later reads seek to the nearest mark at or before `since`.
 */

const MARK_EVERY = 256;
const CHUNK = 64 * 1024;
const NEWLINE = 0x0a;

interface Mark {
  seq: number;
  offset: number;
}

function corrupt(file: string, why: string): FreeholdError {
  return new FreeholdError('internal', `Corrupt change log ${file}: ${why}`);
}

/** Yields each complete line (without the newline) and its byte offset, from `start`. */
function* lines(fd: number, start: number, end: number): Generator<{ text: string; offset: number }> {
  let pos = start;
  let carry = Buffer.alloc(0);
  let carryOffset = start;
  const buf = Buffer.allocUnsafe(CHUNK);
  while (pos < end) {
    const n = readSync(fd, buf, 0, Math.min(CHUNK, end - pos), pos);
    if (n === 0) break;
    pos += n;
    const data = carry.length ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
    let from = 0;
    for (let nl = data.indexOf(NEWLINE, from); nl !== -1; nl = data.indexOf(NEWLINE, from)) {
      yield { text: data.toString('utf8', from, nl), offset: carryOffset + from };
      from = nl + 1;
    }
    carry = Buffer.from(data.subarray(from)); // copy: `buf` is reused
    carryOffset += from;
  }
}

/** A change as its log line: the one spelling, shared by appends and by recovery's rewrite. */
export function changeLine(c: Change): string {
  return JSON.stringify({ seq: c.seq, table: c.table, id: c.id, op: c.op, at: c.at }) + '\n';
}

export class ChangeLog {
  /** Last seq written (0 for an empty log). */
  seq = 0;
  /** Byte size of the log as the store last left it. */
  size = 0;
  private marks: Mark[] | null = null;
  private lineCount = 0;

  constructor(readonly file: string) {}

  /**
   * Finds the last seq. A final line without its newline can only be a torn write
   * that no journal covered (the store never leaves one), so it is cut off.
   */
  load(): void {
    this.marks = null;
    let fd: number;
    try {
      fd = openSync(this.file, 'r+');
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e;
      this.seq = 0;
      this.size = 0;
      return;
    }
    try {
      let size = fstatSync(fd).size;
      const last = this.lastLine(fd, size);
      if (last.end < size) {
        ftruncateSync(fd, last.end);
        fsyncSync(fd);
        size = last.end;
      }
      this.size = size;
      this.seq = last.text === null ? 0 : this.parse(last.text).seq;
    } finally {
      closeSync(fd);
    }
  }

  /** The last complete line, and where complete lines end. */
  private lastLine(fd: number, size: number): { text: string | null; end: number } {
    let span = Math.min(size, CHUNK);
    for (;;) {
      const buf = Buffer.allocUnsafe(span);
      const n = readSync(fd, buf, 0, span, size - span);
      const data = buf.subarray(0, n);
      const end = data.lastIndexOf(NEWLINE); // end of the last complete line
      if (end === -1 && span === size) return { text: null, end: 0 };
      if (end !== -1) {
        const begin = end === 0 ? -1 : data.lastIndexOf(NEWLINE, end - 1); // a negative fromIndex would count from the end
        if (begin !== -1 || span === size) {
          return { text: data.toString('utf8', begin + 1, end), end: size - span + end + 1 };
        }
      }
      span = Math.min(size, span * 4);
    }
  }

  private parse(text: string): Change {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw corrupt(this.file, `unparseable line ${JSON.stringify(text.slice(0, 80))}`);
    }
    const c = v as Partial<Change> | null;
    if (typeof c !== 'object' || c === null || typeof c.seq !== 'number' || typeof c.table !== 'string' || typeof c.id !== 'string') {
      throw corrupt(this.file, `bad line ${JSON.stringify(text.slice(0, 80))}`);
    }
    return { seq: c.seq, table: c.table, id: c.id, op: c.op === 'delete' ? 'delete' : 'put', at: Number(c.at) };
  }

  /**
   * Appends already-numbered changes, without fsync (the journal makes them durable
   * until a checkpoint fsyncs the file), on the calling thread like the unit's other
   * small writes (journal.ts). The caller holds the owner's write lock, and holds
   * readers off until this returns.
   */
  append(changes: Change[]): void {
    if (changes.length === 0) return;
    const lines = changes.map(changeLine);
    appendFileSync(this.file, lines.join(''), { encoding: 'utf8', mode: FILE_MODE });
    changes.forEach((c, i) => {
      if (this.marks && this.lineCount % MARK_EVERY === 0) this.marks.push({ seq: c.seq, offset: this.size });
      this.lineCount++;
      this.size += Buffer.byteLength(lines[i]!);
    });
    this.seq = changes.at(-1)!.seq;
  }

  /** Changes with seq > since, oldest first, at most `limit`. */
  read(since: number, limit: number): Change[] {
    if (limit <= 0 || this.size === 0) return [];
    let fd: number;
    try {
      fd = openSync(this.file, 'r');
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return [];
      throw e;
    }
    try {
      if (!this.marks) this.buildMarks(fd);
      const marks = this.marks!;
      // Last mark whose seq <= since: every line before it has a smaller seq.
      let lo = 0;
      let hi = marks.length - 1;
      let start = 0;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (marks[mid]!.seq <= since) {
          start = marks[mid]!.offset;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      const out: Change[] = [];
      for (const { text } of lines(fd, start, this.size)) {
        if (text === '') continue;
        const c = this.parse(text);
        if (c.seq <= since) continue;
        out.push(c);
        if (out.length >= limit) break;
      }
      return out;
    } finally {
      closeSync(fd);
    }
  }

  private buildMarks(fd: number): void {
    const marks: Mark[] = [];
    let count = 0;
    for (const { text, offset } of lines(fd, 0, this.size)) {
      if (text === '') continue;
      if (count % MARK_EVERY === 0) marks.push({ seq: this.parse(text).seq, offset });
      count++;
    }
    this.marks = marks;
    this.lineCount = count;
  }
}
