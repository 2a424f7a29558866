import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { S3BlobStore } from '../../src/storage/s3/blob-store.js';
import { parseS3Url } from '../../src/storage/s3/url.js';
import { openBlobStore } from '../../src/storage/urls.js';
import { FreeholdError } from '../../src/core/errors.js';
import { blobStoreSuite } from './blob-store.suite.js';
import { startS3Server, S3RVER_KEY, S3RVER_SECRET, type TestS3Server } from '../helpers/s3.js';

let s3: TestS3Server;
let n = 0;
before(async () => {
  s3 = await startS3Server();
});
after(() => s3.close());

// A fresh bucket per suite test: the suite's deletePrefix('') then covers a whole bucket.
blobStoreSuite('s3', async () => S3BlobStore.fromUrl(s3.url(`suite-${n++}`)));

const MiB = 1024 * 1024;

/** A body generated lazily, so neither the test nor the store ever holds it whole. */
function lazyBody(total: number, hash?: ReturnType<typeof createHash>): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const chunk = randomBytes(Math.min(256 * 1024, total - sent));
      sent += chunk.length;
      hash?.update(chunk);
      this.push(chunk);
    },
  });
}

/** Records the name of every S3 command the store's client sends. */
function recordCommands(store: S3BlobStore): string[] {
  const names: string[] = [];
  store.client.middlewareStack.add(
    (next, context) => async (args) => {
      names.push(context.commandName ?? '?');
      return next(args);
    },
    { step: 'initialize', name: 'freeholdTestRecorder' },
  );
  return names;
}

/** Every object in the bucket, temporaries included. */
async function rawKeys(store: S3BlobStore, bucket: string): Promise<string[]> {
  const r = await store.client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (r.Contents ?? []).map((o) => o.Key!).sort();
}

async function fresh(bucket: string, opts?: Parameters<TestS3Server['url']>[1]): Promise<S3BlobStore> {
  const store = S3BlobStore.fromUrl(s3.url(bucket, opts));
  await store.init();
  return store;
}

async function drain(stream: Readable | null): Promise<Buffer> {
  assert.ok(stream);
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('s3: a 20 MB streamed put goes multipart and is published with its sha256', async (t) => {
  const store = await fresh('multipart');
  try {
    const cmds = recordCommands(store);
    const total = 20 * MiB;
    const hash = createHash('sha256');
    let t0 = performance.now();
    const info = await store.put('big/20mb.bin', lazyBody(total, hash), { contentType: 'video/mp4' });
    const putMs = performance.now() - t0;
    const etag = hash.digest('hex');
    assert.equal(info.size, total);
    assert.equal(info.etag, etag);
    assert.deepEqual(await store.head('big/20mb.bin'), info);
    assert.equal(info.contentType, 'video/mp4');
    // 8 + 8 + 4 MiB parts, then one server-side copy onto the real key with the hash.
    assert.equal(cmds.filter((c) => c === 'CreateMultipartUploadCommand').length, 1);
    assert.equal(cmds.filter((c) => c === 'UploadPartCommand').length, 3);
    assert.equal(cmds.filter((c) => c === 'CompleteMultipartUploadCommand').length, 1);
    assert.equal(cmds.filter((c) => c === 'CopyObjectCommand').length, 1);
    assert.equal(cmds.filter((c) => c === 'PutObjectCommand').length, 0);
    assert.deepEqual(await rawKeys(store, 'multipart'), ['big/20mb.bin'], 'the temporary upload is gone');

    t0 = performance.now();
    const got = createHash('sha256');
    let size = 0;
    for await (const c of (await store.get('big/20mb.bin'))!) {
      got.update(c as Buffer);
      size += (c as Buffer).length;
    }
    const getMs = performance.now() - t0;
    assert.equal(size, total);
    assert.equal(got.digest('hex'), etag);
    t.diagnostic(`20 MiB put ${putMs.toFixed(0)} ms (${((20 / putMs) * 1000).toFixed(0)} MiB/s), get ${getMs.toFixed(0)} ms (${((20 / getMs) * 1000).toFixed(0)} MiB/s) on s3rver`);

    // Ranges across a part boundary and at the very end of a multipart object.
    const across = await drain(await store.get('big/20mb.bin', { start: 8 * MiB - 3, end: 8 * MiB + 2 }));
    assert.equal(across.length, 6);
    const last = await drain(await store.get('big/20mb.bin', { start: total - 1, end: total - 1 }));
    assert.equal(last.length, 1);
  } finally {
    await store.close();
  }
});

test('s3: maxBytes refusal mid-multipart aborts the upload and leaves nothing behind', async () => {
  const store = await fresh('toolarge');
  try {
    await store.put('m/keep', Buffer.from('previous'), { contentType: 'text/plain' });
    const cmds = recordCommands(store);
    const source = lazyBody(30 * MiB);
    await assert.rejects(
      store.put('m/keep', source, { maxBytes: 18 * MiB }),
      (e: unknown) => e instanceof FreeholdError && e.code === 'too_large',
    );
    assert.ok(source.destroyed, 'the caller stream is not left half read');
    assert.ok(cmds.includes('UploadPartCommand'), 'the refusal came after parts went up');
    assert.ok(cmds.includes('AbortMultipartUploadCommand'), 'the multipart upload is aborted');
    assert.ok(!cmds.includes('CompleteMultipartUploadCommand'));
    assert.ok(!cmds.includes('CopyObjectCommand'));
    assert.equal((await drain(await store.get('m/keep'))).toString(), 'previous', 'the old blob survives');
    assert.deepEqual(await rawKeys(store, 'toolarge'), ['m/keep'], 'no partial or temporary object');
    // s3rver implements neither ListMultipartUploads nor AbortMultipartUpload (it answers
    // NotImplemented / MethodNotAllowed); against a real server this checks that no upload is pending.
    const pending = await store.client
      .send(new ListMultipartUploadsCommand({ Bucket: 'toolarge' }))
      .then((r) => r.Uploads ?? [])
      .catch((e: Error) => (e.name === 'NotImplemented' ? null : Promise.reject(e)));
    if (pending) assert.deepEqual(pending, []);
  } finally {
    await store.close();
  }
});

test('s3: ranged reads at the edges', async () => {
  const store = await fresh('ranges');
  try {
    await store.put('r/one', Buffer.from('x'));
    await store.put('r/empty', Buffer.alloc(0));
    assert.equal((await drain(await store.get('r/one', { start: 0, end: 0 }))).toString(), 'x');
    assert.equal((await drain(await store.get('r/one', { start: 0, end: 10 }))).toString(), 'x');
    // Starting at or past the end yields nothing, as the fs store does (S3 itself answers 416).
    assert.equal((await drain(await store.get('r/one', { start: 1, end: 5 }))).length, 0);
    // (No ranged read of an empty object: s3rver answers 206 with a Content-Length of 1 and
    // no body, and the socket resets; S3 answers 416, which get() turns into an empty stream.)
    assert.equal((await drain(await store.get('r/empty'))).length, 0);
    assert.equal(await store.get('r/missing', { start: 5, end: 9 }), null);
  } finally {
    await store.close();
  }
});

test('s3: a missing bucket is an init error unless createBucket=true', async () => {
  const store = S3BlobStore.fromUrl(s3.url('no-such-bucket', { createBucket: false }));
  try {
    await assert.rejects(store.init(), /S3 bucket "no-such-bucket" does not exist at http:\/\/127\.0\.0\.1:\d+; create it, or add createBucket=true/);
  } finally {
    await store.close();
  }
  const creating = S3BlobStore.fromUrl(s3.url('no-such-bucket'));
  await creating.init();
  await creating.init();
  await creating.close();
  const now = S3BlobStore.fromUrl(s3.url('no-such-bucket', { createBucket: false }));
  await now.init();
  await now.close();
});

test('s3: wrong credentials are a clear init error without the secret', async () => {
  const secret = 'Wr0ngSecretValue';
  const store = new S3BlobStore({ ...parseS3Url(s3.url('creds')), credentials: { accessKeyId: 'NOBODY', secretAccessKey: secret } });
  try {
    await assert.rejects(store.init(), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /S3 bucket "creds" at http:\/\/127\.0\.0\.1:\d+/);
      assert.ok(!e.message.includes(secret));
      return true;
    });
  } finally {
    await store.close();
  }
});

test('s3: credentials from the standard AWS environment variables', async () => {
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  process.env.AWS_ACCESS_KEY_ID = S3RVER_KEY;
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_SECRET;
  const store = S3BlobStore.fromUrl(s3.url('from-env', { credentials: false }));
  try {
    await store.init();
    await store.put('e/x', Buffer.from('env'));
    assert.equal((await drain(await store.get('e/x'))).toString(), 'env');
  } finally {
    await store.close();
    for (const [name, value] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
});

test('s3: stores under different key prefixes of one bucket stay apart', async () => {
  const url = (prefix: string) => s3.url(`shared/${prefix}`);
  const a = S3BlobStore.fromUrl(url('tenant-a'));
  const b = S3BlobStore.fromUrl(url('tenant/b'));
  await a.init();
  await b.init();
  try {
    await a.put('x/1', Buffer.from('a1'));
    await b.put('x/1', Buffer.from('b1'));
    await b.put('x/2', Buffer.from('b2'));
    const listed: string[] = [];
    for await (const e of a.list('')) listed.push(e.key);
    assert.deepEqual(listed, ['x/1']);
    assert.equal((await drain(await b.get('x/1'))).toString(), 'b1');
    assert.equal(await b.deletePrefix(''), 2);
    assert.equal((await drain(await a.get('x/1'))).toString(), 'a1');
    assert.deepEqual(await rawKeys(a, 'shared'), ['tenant-a/x/1']);
  } finally {
    await a.close();
    await b.close();
  }
});

test('s3: objects written by other tools', async () => {
  const store = await fresh('foreign');
  try {
    // A file dropped in with another S3 client: no sha256 metadata, a real content type.
    await store.client.send(new PutObjectCommand({ Bucket: 'foreign', Key: 'f/photo.jpg', Body: Buffer.from('jpeg'), ContentType: 'image/jpeg' }));
    // Folder markers as some consoles create them are not blobs.
    await store.client.send(new PutObjectCommand({ Bucket: 'foreign', Key: 'f/folder/', Body: Buffer.alloc(0) }));
    const h = (await store.head('f/photo.jpg'))!;
    assert.equal(h.contentType, 'image/jpeg');
    assert.equal(h.size, 4);
    assert.equal(h.etag, createHash('md5').update('jpeg').digest('hex'), 'falls back to the S3 ETag');
    const listed: string[] = [];
    for await (const e of store.list('f')) listed.push(e.key);
    assert.deepEqual(listed, ['f/photo.jpg']);
    assert.equal(await store.deletePrefix('f'), 1);
    assert.deepEqual(await rawKeys(store, 'foreign'), [], 'the marker went too');
  } finally {
    await store.close();
  }
});

test('s3: deletePrefix works in batches of 1000 and list paginates', async () => {
  const store = await fresh('many');
  try {
    // Seeded straight into s3rver's folder (one `<key>._S3rver_object` file per object):
    // 1100 PutObjects through s3rver take 5-15 s on 2 cores; this takes milliseconds.
    mkdirSync(join(s3.directory, 'many', 'p'), { recursive: true });
    for (let i = 0; i < 1100; i++) writeFileSync(join(s3.directory, 'many', 'p', `${String(i).padStart(4, '0')}._S3rver_object`), 'x');
    const cmds = recordCommands(store);
    let count = 0;
    for await (const _ of store.list('p')) count++;
    assert.equal(count, 1100);
    assert.equal(await store.deletePrefix('p/'), 1100);
    assert.equal(cmds.filter((c) => c === 'DeleteObjectsCommand').length, 2);
    assert.deepEqual(await rawKeys(store, 'many'), []);
  } finally {
    await store.close();
  }
});

test('s3: URL parsing', () => {
  const base = 's3://my-bucket/some/prefix/?endpoint=http://127.0.0.1:9000&region=eu-west-3&forcePathStyle=true&createBucket=true';
  assert.deepEqual(parseS3Url(base), {
    bucket: 'my-bucket',
    prefix: 'some/prefix',
    endpoint: 'http://127.0.0.1:9000',
    region: 'eu-west-3',
    forcePathStyle: true,
    createBucket: true,
  });
  // Defaults: path style with a custom endpoint, virtual hosts on AWS; region from env, else us-east-1.
  assert.deepEqual(parseS3Url('s3://bucket?endpoint=https://minio.example:9000/', {}), {
    bucket: 'bucket',
    prefix: '',
    endpoint: 'https://minio.example:9000',
    region: 'us-east-1',
    forcePathStyle: true,
    createBucket: false,
  });
  assert.deepEqual(parseS3Url('s3://bucket', { AWS_REGION: 'ap-south-1' }), {
    bucket: 'bucket',
    prefix: '',
    region: 'ap-south-1',
    forcePathStyle: false,
    createBucket: false,
  });
  assert.deepEqual(parseS3Url('s3://bucket?accessKeyId=AK&secretAccessKey=SK', {}).credentials, { accessKeyId: 'AK', secretAccessKey: 'SK' });
  assert.equal(openBlobStore('s3://bucket?endpoint=http://127.0.0.1:1&region=us-east-1').kind, 's3');

  const SECRET = 'S3cr3tDoNotLeak';
  const bad: Array<[string, RegExp]> = [
    ['s3://', /bucket name is missing/],
    ['s3:///prefix', /bucket name is missing/],
    ['s3://UPPER', /not a valid S3 bucket name/],
    ['s3://ab', /not a valid S3 bucket name/],
    [`s3://AKIAXX:${SECRET}@bucket`, /credentials do not belong before the bucket/],
    [`s3://AKIAXX:${SECRET}/bucket`, /not a valid S3 bucket name/],
    ['s3://bucket/a//b', /key prefix must be/],
    ['s3://bucket/../x', /key prefix must be/],
    ['s3://bucket/a%2F..%2F..', /key prefix must be/],
    ['s3://bucket/%zz', /bad %-escape/],
    ['s3://bucket?endpoint=ftp://host', /endpoint must be an absolute http/],
    ['s3://bucket?endpoint=127.0.0.1:9000', /endpoint must be an absolute http/],
    [`s3://bucket?endpoint=http://u:${SECRET}@host`, /endpoint must not contain credentials/],
    ['s3://bucket?region=us east', /region must be/],
    ['s3://bucket?forcePathStyle=yes', /forcePathStyle must be true or false/],
    ['s3://bucket?createBucket=maybe', /createBucket must be true or false/],
    [`s3://bucket?secretKey=${SECRET}`, /unknown parameter "secretKey"/],
    [`s3://bucket?secretAccessKey=${SECRET}`, /accessKeyId and secretAccessKey must be given together/],
    [`s3://bucket?accessKeyId=AK&secretAccessKey=${SECRET}&accessKeyId=AK2`, /accessKeyId is given twice/],
    ['s3://bucket?region=a&region=b', /region is given twice/],
    [`s3://bucket?accessKeyId=AK&secretAccessKey=${SECRET}#frag`, /fragment/],
  ];
  for (const [url, message] of bad) {
    for (const open of [() => parseS3Url(url, {}), () => openBlobStore(url)]) {
      assert.throws(open, (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.match(e.message, message, url);
        assert.match(e.message, /^Invalid s3:\/\/ blob store URL/);
        assert.ok(!e.message.includes(SECRET), `secret leaked for ${url}: ${e.message}`);
        return true;
      });
    }
  }
});

test('s3: store options are checked', () => {
  const loc = parseS3Url('s3://bucket?endpoint=http://127.0.0.1:1', {});
  assert.throws(() => new S3BlobStore(loc, { partSize: 1024 }), /at least 5 MiB/);
  assert.throws(() => new S3BlobStore(loc, { queueSize: 0 }), /at least 1/);
});

test('s3: unsafe keys never reach the server', async () => {
  const store = S3BlobStore.fromUrl(s3.url('unsafe'));
  const cmds = recordCommands(store);
  try {
    for (const k of ['../x', 'a/.tmp-x', 'a//b']) {
      await assert.rejects(store.put(k, Buffer.from('x')), (e: unknown) => e instanceof FreeholdError && e.code === 'bad_request');
    }
    assert.deepEqual(cmds, []);
  } finally {
    await store.close();
  }
});
