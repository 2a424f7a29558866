import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type yauzl from 'yauzl';
import { compareStrings } from '../../query/evaluate.js';
import type { StoredRecord } from '../../storage/types.js';
import { FreeholdError } from '../errors.js';
import { FILE_RECORD_SERVER_FIELDS } from '../files/freezr-fields.js';
import { filesTableApp } from '../names.js';
import { assertRecordSize, assertShallow, clientFieldProblem, MAX_RECORD_BYTES, SERVER_FIELDS_ALLOWANCE } from '../records/reserved.js';
import { OwnerTable } from '../system-tables.js';
import { invalid, messageOf, recordIdProblem } from './archive-names.js';
import type { ArchiveEntry } from './archive-reader.js';
import type { ProgressMeter } from './progress.js';

/**
 * Reading an archive entry's data for import, checked as it streams: its size and
 * sha256 against manifest.json, its JSON lines one at a time (nothing holds a whole
 * table in memory).
 */

/**
 * Passes an entry's bytes through, checking as they flow that there are exactly as
 * many as declared and that their sha256 is the declared one; errors (before the
 * end of the stream, so a BlobStore put never commits) when not.
 */
function verified(e: ArchiveEntry, meter: ProgressMeter): Transform {
  const hash = createHash('sha256');
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      size += chunk.length;
      if (size > e.size) return cb(invalid(e.name, `holds more than the ${e.size} bytes listed in manifest.json`));
      hash.update(chunk);
      meter.bytes(chunk.length);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (size !== e.size) return cb(invalid(e.name, `holds ${size} bytes, manifest.json says ${e.size} (truncated?)`));
      const sha = hash.digest('hex');
      if (sha !== e.digest.sha256) return cb(invalid(e.name, 'its sha256 does not match manifest.json (the entry was altered or damaged)'));
      cb();
    },
  });
}

export async function openVerified(zip: yauzl.ZipFile, e: ArchiveEntry, meter: ProgressMeter): Promise<Readable> {
  let src: Readable;
  try {
    src = await zip.openReadStreamPromise(e.entry);
  } catch (err) {
    throw invalid(e.name, `cannot be read: ${messageOf(err)}`);
  }
  const check = verified(e, meter);
  // Inflate errors, short data, bad sizes: all reported as a problem of this entry.
  src.on('error', (err) => check.destroy(err instanceof FreeholdError ? err : invalid(e.name, `cannot be read: ${messageOf(err)}`)));
  check.on('close', () => src.destroy());
  return src.pipe(check);
}

/** Lines of a stream (without their newline), each at most `max` bytes; a last line without newline counts. */
export async function* lines(stream: AsyncIterable<Buffer>, max: number, entry: string): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let partLength = 0;
  let lineNo = 0;
  const tooLong = () => invalid(entry, `line ${lineNo + 1} is longer than ${max} bytes`);
  for await (const chunk of stream) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) {
        if (start < chunk.length) {
          parts.push(chunk.subarray(start));
          partLength += chunk.length - start;
          if (partLength > max) throw tooLong();
        }
        break;
      }
      const piece = chunk.subarray(start, nl);
      if (partLength + piece.length > max) throw tooLong();
      const line = parts.length > 0 ? Buffer.concat([...parts, piece]) : piece;
      parts = [];
      partLength = 0;
      lineNo++;
      yield line;
      start = nl + 1;
    }
  }
  if (partLength > 0) yield Buffer.concat(parts);
}

/** One JSONL line as a JSON object, or an error naming the entry and line. */
export function parseObjectLine(line: Buffer, entry: string, lineNo: number): Record<string, unknown> {
  if (line.length === 0) throw invalid(entry, `line ${lineNo} is empty`);
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch (err) {
    throw invalid(entry, `line ${lineNo} is not valid JSON: ${messageOf(err)}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid(entry, `line ${lineNo} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** The latest time a JavaScript Date can hold (ms). */
const MAX_DATE_MS = 8.64e15;

/**
 * How far ahead of this server's clock an archive's dates may be (clocks of two machines
 * differ). A record dated further ahead would win over every later change here (imports
 * keep the newer record) and sit after them in every "modified since" sync.
 */
const FUTURE_SLACK_MS = 24 * 3600 * 1000;

/** Checks one record line of a table entry; `previous` is the previous line's _id (ids must increase). */
export function parseRecordLine(line: Buffer, e: ArchiveEntry, table: string, lineNo: number, previous: string | null): StoredRecord {
  const r = parseObjectLine(line, e.name, lineNo);
  const id = r._id;
  if (typeof id !== 'string' || id.length === 0) throw invalid(e.name, `line ${lineNo} has no _id`);
  const problem = recordIdProblem(table, id);
  if (problem) throw invalid(e.name, `line ${lineNo}: _id ${JSON.stringify(id.slice(0, 100))} ${problem}`);
  for (const field of ['_date_created', '_date_modified'] as const) {
    const v = r[field];
    // Every backend keeps dates as 64-bit integers of epoch ms; a later date than JS can hold would sort first for ever.
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > MAX_DATE_MS) {
      throw invalid(e.name, `line ${lineNo}: ${field} must be a whole number of epoch milliseconds`);
    }
    if (v > Date.now() + FUTURE_SLACK_MS) {
      throw invalid(e.name, `line ${lineNo}: ${field} is ${new Date(v).toISOString()}, more than a day ahead of this server's clock`);
    }
  }
  // What CEPS refuses a client, an archive may not bring in either (the server's own tables have their own shapes).
  if (line.length > MAX_RECORD_BYTES + SERVER_FIELDS_ALLOWANCE) throw invalid(e.name, `line ${lineNo}: a record may be at most ${MAX_RECORD_BYTES} bytes (and its server fields)`);
  try {
    assertRecordSize(r);
  } catch (err) {
    throw invalid(e.name, `line ${lineNo}: ${messageOf(err)}`);
  }
  if (table === OwnerTable.permissions && (r.requestor_app !== id.slice(0, id.indexOf('/')) || r.name !== id.slice(id.indexOf('/') + 1))) {
    // The id says which app's grant this is; the fields say which app it applies to: they must agree.
    throw invalid(e.name, `line ${lineNo}: a grant's requestor_app and name must be those of its _id`);
  }
  if (table === OwnerTable.permissions && (typeof r.granted !== 'boolean' || (r.scope !== undefined && typeof r.scope !== 'string'))) {
    // Read as "granted" only when exactly true: anything else stored would look like a decision nobody made.
    throw invalid(e.name, `line ${lineNo}: a grant's granted must be true or false (and its scope, when there, text)`);
  }
  if (!table.startsWith('system.')) {
    const fileRecord = filesTableApp(table) !== null;
    for (const key of Object.keys(r)) {
      if (key === '_id' || key === '_date_created' || key === '_date_modified') continue;
      if (fileRecord && FILE_RECORD_SERVER_FIELDS.has(key)) continue;
      if (key === '_created_by_app' || key === '_created_by_user') {
        // Set by the server on records an app added to another app's table (table-grants.ts).
        if (typeof r[key] !== 'string' || (r[key] as string).length > 100) throw invalid(e.name, `line ${lineNo}: ${key} must be a name of at most 100 characters`);
        continue;
      }
      const problem = clientFieldProblem(key);
      if (problem) throw invalid(e.name, `line ${lineNo}: ${problem}`);
    }
  }
  // Not the field cap: it guards the server's time per client write, and merges (FEPS
  // partial updates) can grow a stored record past it; what was stored must import again.
  try {
    assertShallow(r, Infinity);
  } catch (err) {
    throw invalid(e.name, `line ${lineNo}: ${messageOf(err)}`);
  }
  // Sorted, strictly increasing ids make duplicates impossible without remembering every id.
  if (previous !== null && compareStrings(previous, id) >= 0) {
    throw invalid(e.name, `line ${lineNo}: _id ${JSON.stringify(id.slice(0, 100))} is not after the previous line's (tables are sorted by _id, without duplicates)`);
  }
  return r as StoredRecord;
}

/**
 * The records of a table entry's stream, each checked (parseRecordLine: ids increasing),
 * with the byte length of its line.
 */
export async function* tableRecords(stream: AsyncIterable<Buffer>, e: ArchiveEntry, table: string, maxLineBytes: number): AsyncGenerator<{ record: StoredRecord; bytes: number }> {
  let n = 0;
  let previous: string | null = null;
  for await (const line of lines(stream, maxLineBytes, e.name)) {
    const record = parseRecordLine(line, e, table, ++n, previous);
    previous = record._id;
    yield { record, bytes: line.length };
  }
}
