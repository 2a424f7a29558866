import { createHash, randomBytes, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type BucketLocationConstraint,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { StoreConnectOptions } from '../connect.js';
import { FreeholdError } from '../../core/errors.js';
import { compareStrings } from '../../query/evaluate.js';
import { keySegments } from '../keys.js';
import type { BlobInfo, BlobRange, BlobStore } from '../types.js';
import { KeyedLock } from '../key-lock.js';
import { copyWithMetadata } from './copy.js';
import { parseS3Url, type S3Location } from './url.js';

/**
 * Blobs as objects in an S3 bucket (AWS S3, MinIO, Cloudflare R2, … — see docs/s3.md).
 *
 * Object key = `<url prefix>/<blob key>`; keys obey exactly the fs store's rules
 * (keySegments), so a blob can move between backends unchanged.
 *
 * Each object carries `x-amz-meta-sha256` (the etag freehold hands out) and, when the
 * writer gave none, `x-amz-meta-untyped: 1` so `head` can tell "no content type" from
 * the server's default `binary/octet-stream`.
 *
 * Writes: the body is hashed and counted as it streams. Bodies up to one part (8 MiB)
 * are held in memory (as lib-storage would anyway) and sent with one PutObject whose
 * metadata is already final. Bigger bodies go up as a multipart upload to a temporary
 * key `<prefix>/.tmp-<random>` and are then copied server-side onto the real key with
 * their sha256: S3 fixes an upload's metadata when it starts, before the hash is
 * known, and the copy publishes data and hash in one atomic step (readers see the old
 * object or the new one, each with its own hash, even with concurrent writers). The
 * `.tmp-` segment is refused in blob keys, so listings never show temporaries.
 */

export interface S3BlobStoreOptions {
  /** Multipart part size in bytes (min 5 MiB, S3's limit). Default 8 MiB. */
  partSize?: number;
  /** Parts uploaded concurrently per put. Default 2 (2 cores, and bounded memory). */
  queueSize?: number;
  /** How its connections resolve the endpoint's name (the SDK's HTTP agents get it). */
  connect?: StoreConnectOptions;
}

const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const DEFAULT_QUEUE_SIZE = 2;
const TMP_PREFIX = '.tmp-';
const DELETE_BATCH = 1000; // DeleteObjects' limit per request
const SHA256_RE = /^[0-9a-f]{64}$/;

function tooLarge(max: number): FreeholdError {
  return new FreeholdError('too_large', `Blob is larger than the limit of ${max} bytes`);
}

function httpStatus(e: unknown): number | undefined {
  return typeof e === 'object' && e !== null ? (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode : undefined;
}

function isNotFound(e: unknown): boolean {
  const name = e instanceof Error ? e.name : '';
  return httpStatus(e) === 404 || name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchBucket';
}

/** Counts and hashes bytes as they pass, failing as soon as the limit is crossed. */
class Meter {
  size = 0;
  overflowed = false;
  private readonly hash: Hash = createHash('sha256');
  private digestHex: string | undefined;

  constructor(private readonly max: number) {}

  /** The hashing "transform": an async generator, so errors travel both ways (a failing consumer stops the source). */
  async *wrap(source: AsyncIterable<Buffer | string> | Iterable<Buffer>): AsyncGenerator<Buffer, void, undefined> {
    for await (const chunk of source) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      this.size += buf.length;
      if (this.size > this.max) {
        this.overflowed = true;
        throw tooLarge(this.max);
      }
      this.hash.update(buf);
      yield buf;
    }
  }

  digest(): string {
    return (this.digestHex ??= this.hash.digest('hex'));
  }
}

async function* concat(head: Buffer[], rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer, void, undefined> {
  yield* head;
  yield* rest;
}

export class S3BlobStore implements BlobStore {
  readonly kind = 's3';
  /** Exposed for tests and tools (e.g. counting requests); freehold's own code goes through BlobStore. */
  readonly client: S3Client;
  private readonly bucket: string;
  /** Object key prefix for this store: '' or 'some/prefix/'. */
  private readonly base: string;
  private readonly createBucket: boolean;
  private readonly where: string;
  private readonly partSize: number;
  private readonly queueSize: number;
  /** Per-object-key queue for the publishing step of puts, and deletes (see publish). */
  private readonly locks = new KeyedLock();

  constructor(location: S3Location, options: S3BlobStoreOptions = {}) {
    this.bucket = location.bucket;
    this.base = location.prefix ? location.prefix + '/' : '';
    this.createBucket = location.createBucket;
    this.where = location.endpoint ?? `AWS S3 (${location.region})`;
    this.partSize = options.partSize ?? DEFAULT_PART_SIZE;
    this.queueSize = options.queueSize ?? DEFAULT_QUEUE_SIZE;
    if (!(Number.isInteger(this.partSize) && this.partSize >= 5 * 1024 * 1024)) throw new Error('S3 partSize must be at least 5 MiB');
    if (!(Number.isInteger(this.queueSize) && this.queueSize >= 1)) throw new Error('S3 queueSize must be at least 1');
    // The pinned SDK supports Node 20 but prints a notice about its end of life in every
    // process; an operator who wants it can set the variable to false.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client({
      region: location.region,
      forcePathStyle: location.forcePathStyle,
      ...(location.endpoint !== undefined ? { endpoint: location.endpoint } : {}),
      // Without URL credentials the SDK's default chain applies: AWS_* env vars first,
      // then shared config files and instance roles.
      ...(location.credentials ? { credentials: location.credentials } : {}),
      // We hash every body ourselves; the SDK's default CRC32 checksums on every request
      // are not understood by several S3-compatible servers (older MinIO, R2 at times).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Options for the SDK's own Node handler: its agents, made with these, keep its defaults otherwise.
      ...(options.connect?.lookup ? { requestHandler: { httpAgent: { lookup: options.connect.lookup }, httpsAgent: { lookup: options.connect.lookup } } } : {}),
    });
  }

  static fromUrl(url: string, options?: S3BlobStoreOptions): S3BlobStore {
    return new S3BlobStore(parseS3Url(url), options);
  }

  async init(): Promise<void> {
    const bucket = this.bucket;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: bucket }));
      return;
    } catch (e) {
      const status = httpStatus(e);
      if (status === 403) {
        throw new Error(`S3 bucket "${bucket}" at ${this.where}: access denied; check the credentials and the bucket policy (docs/s3.md)`, { cause: e });
      }
      if (status === 301) {
        throw new Error(`S3 bucket "${bucket}" is not in region ${await this.client.config.region()}; set region= in the blob store URL`, { cause: e });
      }
      if (!isNotFound(e)) {
        const why = e instanceof Error ? e.message || e.name : String(e);
        throw new Error(`S3 bucket "${bucket}" at ${this.where} could not be checked: ${why}`, { cause: e });
      }
    }
    if (!this.createBucket) {
      throw new Error(`S3 bucket "${bucket}" does not exist at ${this.where}; create it, or add createBucket=true to the blob store URL`);
    }
    try {
      const region = await this.client.config.region();
      const onAws = this.where.startsWith('AWS S3');
      // AWS wants the region spelled out except for us-east-1; other servers take the default.
      const config = onAws && region !== 'us-east-1' ? { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } } : {};
      await this.client.send(new CreateBucketCommand({ Bucket: bucket, ...config }));
    } catch (e) {
      // Another process (or a second init) may have created it in the meantime.
      if (e instanceof Error && (e.name === 'BucketAlreadyOwnedByYou' || e.name === 'BucketAlreadyExists')) return;
      throw new Error(`S3 bucket "${bucket}" could not be created at ${this.where}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  async put(key: string, body: Readable | Buffer, options: { contentType?: string; maxBytes?: number } = {}): Promise<BlobInfo> {
    const objectKey = this.objectKey(key);
    const max = options.maxBytes ?? Infinity;
    if (Buffer.isBuffer(body) && body.length > max) throw tooLarge(max);
    const meter = new Meter(max);
    const chunks = meter.wrap(Buffer.isBuffer(body) ? [body] : body);
    try {
      // Read up to one part: if the body ends within it, one PutObject with final metadata does.
      const head: Buffer[] = [];
      let headBytes = 0;
      let ended = false;
      while (!ended && headBytes <= this.partSize) {
        const r = await chunks.next();
        if (r.done) ended = true;
        else {
          head.push(r.value);
          headBytes += r.value.length;
        }
      }
      if (ended) {
        const data = Buffer.concat(head, headBytes);
        return await this.publish(objectKey, meter, options.contentType, () =>
          this.client.send(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key: objectKey,
              Body: data,
              ContentLength: data.length,
              ...this.typeAndMeta(meter.digest(), options.contentType),
            }),
          ),
        );
      }
      return await this.putMultipart(objectKey, concat(head, chunks), meter, options.contentType);
    } catch (e) {
      // Stop reading the caller's stream (an upload body should not hang around half read).
      if (!Buffer.isBuffer(body)) body.destroy();
      if (meter.overflowed) throw tooLarge(max);
      throw e;
    }
  }

  /**
   * The step that makes a blob visible, then its head. One at a time per key in this
   * process: S3 itself replaces objects atomically, but simpler servers (s3rver writes
   * the bytes and the metadata file separately) can mix two concurrent writers' halves,
   * and holding the key until the head is read lets put report exactly what it stored.
   */
  private async publish(objectKey: string, meter: Meter, contentType: string | undefined, write: () => Promise<unknown>): Promise<BlobInfo> {
    return this.locks.run(objectKey, async () => {
      await write();
      return this.infoAfterPut(objectKey, meter, contentType);
    });
  }

  private async putMultipart(objectKey: string, chunks: AsyncIterable<Buffer>, meter: Meter, contentType: string | undefined): Promise<BlobInfo> {
    const tmpKey = this.base + TMP_PREFIX + randomBytes(12).toString('hex');
    // highWaterMark 1: lib-storage does its own part buffering; do not read further ahead.
    const stream = Readable.from(chunks, { highWaterMark: 1 });
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: tmpKey, Body: stream },
      partSize: this.partSize,
      queueSize: this.queueSize,
      // On failure lib-storage sends AbortMultipartUpload, so no parts are left billed.
      leavePartsOnError: false,
    });
    try {
      await upload.done();
      return await this.publish(objectKey, meter, contentType, () =>
        copyWithMetadata(this.client, {
          bucket: this.bucket,
          fromKey: tmpKey,
          toKey: objectKey,
          size: meter.size,
          contentType,
          metadata: this.typeAndMeta(meter.digest(), contentType).Metadata,
        }),
      );
    } finally {
      stream.destroy();
      // Nothing is there if the upload was aborted; DeleteObject of a missing key is a no-op.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: tmpKey })).catch(() => {});
    }
  }

  async get(key: string, range?: BlobRange): Promise<Readable | null> {
    const objectKey = this.objectKey(key);
    if (range && !(Number.isInteger(range.start) && Number.isInteger(range.end) && range.start >= 0 && range.end >= range.start)) {
      throw new FreeholdError('bad_request', 'Invalid byte range');
    }
    try {
      const r = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: objectKey, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
      );
      if (!(r.Body instanceof Readable)) throw new Error('S3 GetObject returned no Node stream');
      return range ? exactRange(r.Body, range, r.ContentRange) : r.Body;
    } catch (e) {
      if (isNotFound(e)) return null;
      // A start at or past the end: S3 says 416; the fs store yields nothing. The HTTP layer clamps ranges via head().
      if (httpStatus(e) === 416 || (e instanceof Error && e.name === 'InvalidRange')) return Readable.from([]);
      throw e;
    }
  }

  async head(key: string): Promise<BlobInfo | null> {
    const r = await this.headObject(this.objectKey(key));
    return r && this.info(r);
  }

  async delete(key: string): Promise<boolean> {
    const objectKey = this.objectKey(key);
    return this.locks.run(objectKey, async () => {
      // DeleteObject answers 204 whether or not the key existed, so ask first.
      if (!(await this.headObject(objectKey))) return false;
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      return true;
    });
  }

  /**
   * A prefix names a folder, as in the fs store: `a/b` and `a/b/` cover keys under `a/b/`
   * (never `a/bc`), '' covers everything. Returns how many blobs went; objects that are
   * not valid blob keys (temporaries, folder markers left by other tools) go too, uncounted.
   */
  async deletePrefix(prefix: string): Promise<number> {
    const s3Prefix = this.s3Prefix(prefix);
    let count = 0;
    let batch: string[] = [];
    for await (const o of this.objects(s3Prefix)) {
      if (o.key !== null) count++;
      batch.push(o.s3Key);
      if (batch.length === DELETE_BATCH) {
        await this.deleteBatch(batch);
        batch = [];
      }
    }
    if (batch.length) await this.deleteBatch(batch);
    return count;
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    for await (const o of this.objects(this.s3Prefix(prefix))) {
      if (o.key !== null) yield { key: o.key, size: o.size };
    }
  }

  // --- helpers ---------------------------------------------------------------------

  private objectKey(key: string): string {
    return this.base + keySegments(key).join('/');
  }

  private s3Prefix(prefix: string): string {
    const segs = keySegments(prefix, true);
    return this.base + (segs.length ? segs.join('/') + '/' : '');
  }

  private typeAndMeta(sha256: string, contentType: string | undefined): { ContentType?: string; Metadata: Record<string, string> } {
    return contentType !== undefined ? { ContentType: contentType, Metadata: { sha256 } } : { Metadata: { sha256, untyped: '1' } };
  }

  private async headObject(objectKey: string): Promise<HeadObjectCommandOutput | null> {
    try {
      return await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  private info(r: HeadObjectCommandOutput): BlobInfo {
    const sha = r.Metadata?.sha256;
    // Objects written by other tools carry no sha256; their S3 ETag (an MD5 or a
    // multipart digest) still changes with the content, which is what HTTP caching needs.
    const etag = sha && SHA256_RE.test(sha) ? sha : (r.ETag ?? '').replace(/"/g, '');
    const untyped = r.Metadata?.untyped === '1';
    return {
      size: r.ContentLength ?? 0,
      modified: r.LastModified?.getTime() ?? 0,
      etag,
      ...(!untyped && r.ContentType ? { contentType: r.ContentType } : {}),
    };
  }

  /** What put returns: the stored object's own head, so `head()` right after agrees with it. */
  private async infoAfterPut(objectKey: string, meter: Meter, contentType: string | undefined): Promise<BlobInfo> {
    const r = await this.headObject(objectKey);
    if (r && r.Metadata?.sha256 === meter.digest() && r.ContentLength === meter.size) return this.info(r);
    // A concurrent writer replaced it already; report what we wrote (S3 times have 1 s resolution).
    return {
      size: meter.size,
      modified: Math.floor(Date.now() / 1000) * 1000,
      etag: meter.digest(),
      ...(contentType !== undefined ? { contentType } : {}),
    };
  }

  /** Every object under an S3 prefix, in code-point order within each page, with its blob key if it is a valid one. */
  private async *objects(s3Prefix: string): AsyncGenerator<{ s3Key: string; key: string | null; size: number }> {
    let token: string | undefined;
    do {
      const r = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: s3Prefix, ...(token ? { ContinuationToken: token } : {}) }),
      );
      // S3, MinIO and R2 list in UTF-8 byte order (= code-point order) already; s3rver
      // walks folders and puts `a/b/x` before `a/b.txt`, so each page is sorted here.
      // Sorting across pages would mean holding the whole listing; compliant servers don't need it.
      const page = (r.Contents ?? []).flatMap((o) => (o.Key !== undefined && o.Key.startsWith(this.base) ? [{ s3Key: o.Key, size: o.Size ?? 0 }] : []));
      page.sort((a, b) => compareStrings(a.s3Key, b.s3Key));
      for (const o of page) yield { ...o, key: validKey(o.s3Key.slice(this.base.length)) };
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }



  private async deleteBatch(keys: string[]): Promise<void> {
    const r = await this.client.send(
      new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
    );
    const failed = (r.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
    if (failed.length) {
      throw new Error(`S3 DeleteObjects failed for ${failed.length} object(s), e.g. ${failed[0]!.Key ?? '?'}: ${failed[0]!.Code ?? ''} ${failed[0]!.Message ?? ''}`);
    }
  }
}

/**
 * HTTP lets a server ignore Range (200 with everything) or answer more than asked
 * (s3rver reads `bytes=0-0` as "from 0 to the end"); cut such answers down to the
 * requested bytes so callers can rely on what they asked for.
 */
function exactRange(body: Readable, range: BlobRange, contentRange: string | undefined): Readable {
  const m = /^bytes (\d+)-(\d+)\//.exec(contentRange ?? '');
  const gotStart = m ? Number(m[1]) : 0;
  const gotEnd = m ? Number(m[2]) : Infinity;
  if (gotStart === range.start && gotEnd <= range.end) return body;
  let skip = range.start - gotStart;
  let left = range.end - range.start + 1;
  async function* cut(): AsyncGenerator<Buffer> {
    for await (const chunk of body) {
      let buf = chunk as Buffer;
      if (skip > 0) {
        if (buf.length <= skip) {
          skip -= buf.length;
          continue;
        }
        buf = buf.subarray(skip);
        skip = 0;
      }
      if (buf.length >= left) {
        yield buf.subarray(0, left);
        return; // leaving the loop destroys the response, freeing its socket
      }
      left -= buf.length;
      yield buf;
    }
  }
  return Readable.from(cut(), { objectMode: false });
}

function validKey(key: string): string | null {
  try {
    return keySegments(key).join('/');
  } catch {
    return null;
  }
}
