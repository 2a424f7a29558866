import { resolve } from 'node:path';
import type { BlobStore, RecordStore } from './types.js';
import { SqliteRecordStore } from './sqlite/record-store.js';
import { FsBlobStore } from './fs/blob-store.js';

/**
 * Store settings are one URL-like string each (DESIGN.md "Storage configuration"),
 * e.g. `sqlite:./data/freehold.db` or `fs:./data/files`. The returned store is not
 * yet initialised: callers run `init()`.
 */

const RECORD_SCHEMES = ['sqlite:<path>', 'sqlite::memory:'];
const BLOB_SCHEMES = ['fs:<path>'];

function split(url: string): { scheme: string; rest: string } {
  const i = url.indexOf(':');
  return i <= 0 ? { scheme: '', rest: url } : { scheme: url.slice(0, i).toLowerCase(), rest: url.slice(i + 1) };
}

export function openRecordStore(url: string): RecordStore {
  const { scheme, rest } = split(url);
  switch (scheme) {
    case 'sqlite':
      if (rest === '') throw new Error('Record store URL sqlite: needs a file path, e.g. sqlite:./data/freehold.db');
      return new SqliteRecordStore(rest === ':memory:' ? rest : resolve(rest));
    // Later backends plug in here: 'flatfile' (flatfile:<dir>), 'postgres'/'postgresql' (postgres://…).
    default:
      throw new Error(`Unsupported record store ${JSON.stringify(url)}: supported forms are ${RECORD_SCHEMES.join(', ')}`);
  }
}

export function openBlobStore(url: string): BlobStore {
  const { scheme, rest } = split(url);
  switch (scheme) {
    case 'fs':
      if (rest === '') throw new Error('Blob store URL fs: needs a directory, e.g. fs:./data/files');
      return new FsBlobStore(resolve(rest));
    // Later backends plug in here: 's3' (s3://bucket?endpoint=…&region=…).
    default:
      throw new Error(`Unsupported blob store ${JSON.stringify(url)}: supported forms are ${BLOB_SCHEMES.join(', ')}`);
  }
}
