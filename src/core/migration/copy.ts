import type { BlobStore, RecordStore, StoredRecord } from '../../storage/types.js';
import type { Condition } from '../../query/types.js';
import { canonicalJson, newHash } from './canonical.js';

const PAGE = 1000;

/** Every record of one owner's table, in `_id` order, a page at a time. */
export async function* recordsOf(store: RecordStore, owner: string, table: string): AsyncGenerator<StoredRecord[]> {
  let after: string | undefined;
  for (;;) {
    const where: Condition = after === undefined ? { op: 'true' } : { op: 'gt', path: ['_id'], value: after };
    const page = await store.query(owner, table, where, { sort: [{ path: ['_id'], direction: 1 }], skip: 0, limit: PAGE });
    if (page.length === 0) return;
    yield page;
    if (page.length < PAGE) return;
    after = page[page.length - 1]!._id;
  }
}

export interface CopyProgress {
  phase: 'records' | 'files' | 'verify' | 'cleanup';
  table?: string;
  done: number;
  total: number;
}

/**
 * Makes the target's copy of an owner's records equal to the source's: writes every
 * source record (puts keep ids and dates, so a rerun writes the same again and never
 * duplicates), then removes what the target has that the source no longer does.
 */
export async function syncRecords(src: RecordStore, dst: RecordStore, owner: string, onProgress: (p: CopyProgress) => void): Promise<void> {
  const tables = await src.listTables(owner);
  const total = tables.reduce((n, t) => n + t.count, 0);
  let done = 0;
  for (const { table } of tables) {
    for await (const page of recordsOf(src, owner, table)) {
      await dst.batch(owner, page.map((record) => ({ kind: 'put' as const, table, record })));
      done += page.length;
      onProgress({ phase: 'records', table, done, total });
    }
  }
  const keep = new Set(tables.map((t) => t.table));
  for (const { table } of await dst.listTables(owner)) {
    if (!keep.has(table)) {
      await dst.dropTable(owner, table);
      continue;
    }
    for await (const page of recordsOf(dst, owner, table)) {
      const gone: string[] = [];
      for (const r of page) if (!(await src.get(owner, table, r._id))) gone.push(r._id);
      if (gone.length) await dst.batch(owner, gone.map((id) => ({ kind: 'delete' as const, table, id })));
    }
  }
}

/** Copies an owner's blobs whose content differs (by sha256), and removes extras from the target. */
export async function syncBlobs(src: BlobStore, dst: BlobStore, owner: string, onProgress: (p: CopyProgress) => void): Promise<void> {
  const keys: string[] = [];
  for await (const { key } of src.list(owner)) keys.push(key);
  let done = 0;
  for (const key of keys) {
    const [a, b] = await Promise.all([src.head(key), dst.head(key)]);
    if (a && (!b || b.etag !== a.etag || b.size !== a.size)) {
      const body = await src.get(key);
      if (body) await dst.put(key, body, a.contentType ? { contentType: a.contentType } : {});
    }
    onProgress({ phase: 'files', done: ++done, total: keys.length });
  }
  const wanted = new Set(keys);
  const extras: string[] = [];
  for await (const { key } of dst.list(owner)) if (!wanted.has(key)) extras.push(key);
  for (const key of extras) await dst.delete(key);
}

export interface OwnerDigest {
  tables: Record<string, { count: number; sha256: string }>;
  files: Record<string, string>;
}

/** Counts and content hashes of everything an owner has in a pair of stores. */
export async function digestOwner(records: RecordStore, blobs: BlobStore, owner: string): Promise<OwnerDigest> {
  const tables: OwnerDigest['tables'] = {};
  for (const { table } of await records.listTables(owner)) {
    const hash = newHash();
    let count = 0;
    for await (const page of recordsOf(records, owner, table)) {
      for (const r of page) hash.update(canonicalJson(r) + '\n');
      count += page.length;
    }
    if (count > 0) tables[table] = { count, sha256: hash.digest('hex') };
  }
  const files: Record<string, string> = {};
  for await (const { key } of blobs.list(owner)) {
    const info = await blobs.head(key);
    if (info) files[key] = `${info.size}:${info.etag}`;
  }
  return { tables, files };
}

/** The differences between two digests, in words; empty when they match. */
export function compareDigests(a: OwnerDigest, b: OwnerDigest): string[] {
  const problems: string[] = [];
  for (const t of new Set([...Object.keys(a.tables), ...Object.keys(b.tables)])) {
    const x = a.tables[t];
    const y = b.tables[t];
    if (!x || !y) problems.push(`table ${t}: only in the ${x ? 'source' : 'target'}`);
    else if (x.count !== y.count) problems.push(`table ${t}: ${x.count} records in the source, ${y.count} in the target`);
    else if (x.sha256 !== y.sha256) problems.push(`table ${t}: contents differ`);
  }
  for (const k of new Set([...Object.keys(a.files), ...Object.keys(b.files)])) {
    if (a.files[k] !== b.files[k]) problems.push(`file ${k}: ${a.files[k] ? (b.files[k] ? 'contents differ' : 'missing in the target') : 'only in the target'}`);
  }
  return problems;
}
