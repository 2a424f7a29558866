import crypto, { type BinaryLike, type CipherKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TransformOptions } from 'node:stream';

/**
 * An in-process S3 server (s3rver) for tests: 127.0.0.1, a free port, a fresh temp
 * directory, no logging. s3rver's built-in account is S3RVER/S3RVER.
 *
 *   const s3 = await startS3Server();
 *   const store = S3BlobStore.fromUrl(s3.url('my-bucket'));   // createBucket=true
 *   …
 *   await s3.close();
 */

export const S3RVER_KEY = 'S3RVER';
export const S3RVER_SECRET = 'S3RVER';

export interface TestS3Server {
  /** e.g. http://127.0.0.1:41234 */
  endpoint: string;
  /** Where s3rver keeps its files (bucket folders, `*._S3rver_object` files). */
  directory: string;
  /**
   * A blob store URL for `bucket` (optionally `bucket/prefix`) that creates the bucket
   * at init. Test credentials are in the URL, so no process env is touched.
   */
  url(bucket: string, opts?: { createBucket?: boolean; credentials?: boolean }): string;
  close(): Promise<void>;
}

/** The slice of s3rver's API used here (the package ships no types). */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverCtor = new (options: Record<string, unknown>) => S3rverInstance;

const DES_PATCHED = Symbol.for('freehold.test.s3rverDesPatch');

/**
 * s3rver encrypts ListObjectsV2 continuation tokens with single DES, which OpenSSL 3
 * (Node 17+) only has in its legacy provider, so every listing past 1000 keys fails
 * with InternalError. Single DES with key K is 3DES-EDE with key K|K|K, which OpenSSL 3
 * still ships: route 'des' there. Only this test process is affected, and only 'des'.
 */
function patchDesForOpenSsl3(): void {
  const c = crypto as typeof crypto & { [DES_PATCHED]?: true };
  if (c[DES_PATCHED]) return;
  const { createCipheriv, createDecipheriv } = crypto;
  // s3rver passes a Buffer key; nothing else here uses 'des'.
  const triple = (key: CipherKey) => Buffer.concat(Array(3).fill(Buffer.from(key as Uint8Array)) as Buffer[]);
  c.createCipheriv = ((algorithm: string, key: CipherKey, iv: BinaryLike | null, options?: TransformOptions) =>
    algorithm === 'des'
      ? createCipheriv('des-ede3-cbc', triple(key), iv, options)
      : createCipheriv(algorithm, key, iv, options)) as typeof crypto.createCipheriv;
  c.createDecipheriv = ((algorithm: string, key: CipherKey, iv: BinaryLike | null, options?: TransformOptions) =>
    algorithm === 'des'
      ? createDecipheriv('des-ede3-cbc', triple(key), iv, options)
      : createDecipheriv(algorithm, key, iv, options)) as typeof crypto.createDecipheriv;
  c[DES_PATCHED] = true;
}
export async function startS3Server(): Promise<TestS3Server> {
  patchDesForOpenSsl3();
  // s3rver is CommonJS without type declarations; createRequire keeps tsc strict-clean.
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor;
  const directory = mkdtempSync(join(tmpdir(), 'freehold-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    // Path-style only: vhost parsing would read "127" as a bucket-ish host.
    vhostBuckets: false,
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    directory,
    url(bucket, opts = {}) {
      const params = new URLSearchParams({ endpoint, region: 'us-east-1', forcePathStyle: 'true' });
      if (opts.createBucket ?? true) params.set('createBucket', 'true');
      if (opts.credentials ?? true) {
        params.set('accessKeyId', S3RVER_KEY);
        params.set('secretAccessKey', S3RVER_SECRET);
      }
      return `s3://${bucket}?${params.toString()}`;
    },
    async close() {
      // Kept-alive sockets of clients that were not closed would hold close() open.
      server.httpServer?.closeAllConnections();
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
