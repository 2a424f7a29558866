import { resolve } from 'node:path';
import type { BlobStore, RecordStore } from './types.js';
import { SqliteRecordStore } from './sqlite/record-store.js';
import { parsePostgresUrl } from './postgres/url.js';
import { FsBlobStore } from './fs/blob-store.js';
import { parseS3Url } from './s3/url.js';
import { LazyBlobStore, LazyRecordStore } from './lazy.js';
import type { StoreConnectOptions } from './connect.js';

/**
 * Store settings are one URL-like string each (DESIGN.md "Storage configuration"),
 * e.g. `sqlite:./data/freehold.db` or `fs:./data/files`. The returned store is not
 * yet initialised: callers run `init()`, which is also when the modules of stores
 * other than the default SQLite are loaded.
 */

const RECORD_SCHEMES = ['sqlite:<path>[?durability=full]', 'sqlite::memory:', 'flatfile:<dir>', 'postgres://user@host/db[?pool=10&schema=name]'];
const BLOB_SCHEMES = ['fs:<path>', 's3://<bucket>[/<prefix>]?endpoint=…&region=…'];

function split(url: string): { scheme: string; rest: string } {
  const i = url.indexOf(':');
  return i <= 0 ? { scheme: '', rest: url } : { scheme: url.slice(0, i).toLowerCase(), rest: url.slice(i + 1) };
}

/** `connect`: how a network store's connections resolve names (connect.ts); local stores have none. */
export function openRecordStore(url: string, connect: StoreConnectOptions = {}): RecordStore {
  const { scheme, rest } = split(url);
  switch (scheme) {
    case 'sqlite':
    {
      // `sqlite:<path>[?durability=full]`: the only parameter; anything else after `?` is refused.
      const [file = '', query] = rest.split('?', 2) as [string, string | undefined];
      if (file === '') throw new Error('Record store URL sqlite: needs a file path, e.g. sqlite:./data/freehold.db');
      const params = new URLSearchParams(query ?? '');
      const durability = params.get('durability') ?? 'normal';
      if ((durability !== 'normal' && durability !== 'full') || [...params.keys()].some((k) => k !== 'durability')) {
        throw new Error('sqlite: takes one optional parameter, durability=normal|full');
      }
      return new SqliteRecordStore(file === ':memory:' ? file : resolve(file), durability);
    }
    case 'postgres':
    case 'postgresql':
      parsePostgresUrl(url); // a bad URL fails now, not at init()
      return new LazyRecordStore('postgres', async () => new (await import('./postgres/record-store.js')).PostgresRecordStore(url, connect));
    case 'flatfile':
      if (rest === '') throw new Error('Record store URL flatfile: needs a directory, e.g. flatfile:./data/records');
      // Loaded at init() like the network stores: most servers never use it.
      return new LazyRecordStore('flatfile', async () => new (await import('./flatfile/record-store.js')).FlatFileRecordStore(resolve(rest)));
    default:
      throw new Error(`Unsupported record store scheme ${JSON.stringify(scheme || url.slice(0, 20))}: supported forms are ${RECORD_SCHEMES.join(', ')}`);
  }
}

export function openBlobStore(url: string, connect: StoreConnectOptions = {}): BlobStore {
  const { scheme, rest } = split(url);
  switch (scheme) {
    case 'fs':
      if (rest === '') throw new Error('Blob store URL fs: needs a directory, e.g. fs:./data/files');
      return new FsBlobStore(resolve(rest));
    case 's3':
    {
      const location = parseS3Url(url); // a bad URL fails now, not at init()
      return new LazyBlobStore('s3', async () => new (await import('./s3/blob-store.js')).S3BlobStore(location, { connect }));
    }
    default:
      throw new Error(`Unsupported blob store scheme ${JSON.stringify(scheme || url.slice(0, 20))}: supported forms are ${BLOB_SCHEMES.join(', ')}`);
  }
}
