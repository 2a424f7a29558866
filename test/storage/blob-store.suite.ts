import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { BlobStore } from '../../src/storage/types.js';
import { FreeholdError } from '../../src/core/errors.js';

/**
 * The contract every BlobStore backend must meet. `make` returns a fresh, empty,
 * not yet initialised store for each test.
 *
 * Prefixes name folders: `a/b` and `a/b/` both mean the keys under `a/b/`.
 */
export function blobStoreSuite(name: string, make: () => Promise<BlobStore>): void {
  async function withStore(fn: (s: BlobStore) => Promise<void>): Promise<void> {
    const store = await make();
    await store.init();
    await store.init();
    try {
      await fn(store);
    } finally {
      await store.close();
    }
  }

  async function read(s: BlobStore, key: string, range?: { start: number; end: number }): Promise<Buffer | null> {
    const stream = await s.get(key, range);
    if (!stream) return null;
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  async function keys(s: BlobStore, prefix: string): Promise<Array<[string, number]>> {
    const out: Array<[string, number]> = [];
    for await (const e of s.list(prefix)) out.push([e.key, e.size]);
    return out;
  }

  const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

  test(`${name}: put, get, head, etag, overwrite, delete`, () =>
    withStore(async (s) => {
      assert.ok(s.kind.length > 0);
      const before = Date.now();
      const info = await s.put('alice/app/hello.txt', Buffer.from('hello world'), { contentType: 'text/plain' });
      assert.equal(info.size, 11);
      assert.equal(info.etag, sha('hello world'));
      assert.equal(info.contentType, 'text/plain');
      assert.ok(info.modified >= before - 2000 && info.modified <= Date.now() + 2000);
      assert.deepEqual(await s.head('alice/app/hello.txt'), info);
      assert.equal((await read(s, 'alice/app/hello.txt'))!.toString(), 'hello world');

      const again = await s.put('alice/app/hello.txt', Readable.from([Buffer.from('bye')]));
      assert.equal(again.etag, sha('bye'));
      assert.equal(again.contentType, undefined, 'an overwrite without a content type drops the old one');
      assert.equal((await read(s, 'alice/app/hello.txt'))!.toString(), 'bye');
      assert.equal((await s.head('alice/app/hello.txt'))!.etag, sha('bye'));

      await s.put('alice/app/empty', Buffer.alloc(0));
      assert.deepEqual(await read(s, 'alice/app/empty'), Buffer.alloc(0));
      assert.equal((await s.head('alice/app/empty'))!.etag, sha(''));

      await s.put('alice/app/ünï cødé 😀.txt', Buffer.from('u'));
      assert.equal((await read(s, 'alice/app/ünï cødé 😀.txt'))!.toString(), 'u');

      assert.equal(await s.get('alice/app/nope'), null);
      assert.equal(await s.head('alice/app/nope'), null);
      assert.equal(await s.get('alice/app'), null, 'a folder is not a blob');
      assert.equal(await s.head('alice/app'), null);
      assert.equal(await s.delete('alice/app/hello.txt'), true);
      assert.equal(await s.delete('alice/app/hello.txt'), false);
      assert.equal(await s.get('alice/app/hello.txt'), null);
      assert.equal(await s.head('alice/app/hello.txt'), null);
    }));

  test(`${name}: ranges`, () =>
    withStore(async (s) => {
      const data = Buffer.from('0123456789');
      await s.put('r/file', data);
      assert.equal((await read(s, 'r/file', { start: 0, end: 0 }))!.toString(), '0');
      assert.equal((await read(s, 'r/file', { start: 2, end: 5 }))!.toString(), '2345');
      assert.equal((await read(s, 'r/file', { start: 7, end: 9 }))!.toString(), '789');
      assert.equal((await read(s, 'r/file', { start: 8, end: 100 }))!.toString(), '89', 'an end past EOF stops at EOF');
      assert.equal(await s.get('r/none', { start: 0, end: 1 }), null);
      await assert.rejects(s.get('r/file', { start: 5, end: 2 }), (e: unknown) => e instanceof FreeholdError && e.code === 'bad_request');
      await assert.rejects(s.get('r/file', { start: -1, end: 2 }), (e: unknown) => e instanceof FreeholdError);
    }));

  test(`${name}: list and deletePrefix`, () =>
    withStore(async (s) => {
      for (const k of ['a/b/c.txt', 'a/b.txt', 'a/bc', 'a/b/d/e', 'a/a', 'b/x', 'a/B']) await s.put(k, Buffer.from(k));
      assert.deepEqual(await keys(s, 'a'), [
        ['a/B', 3],
        ['a/a', 3],
        ['a/b.txt', 7],
        ['a/b/c.txt', 9],
        ['a/b/d/e', 7],
        ['a/bc', 4],
      ]);
      assert.deepEqual(await keys(s, 'a/b/'), [
        ['a/b/c.txt', 9],
        ['a/b/d/e', 7],
      ]);
      assert.deepEqual((await keys(s, '')).map(([k]) => k), ['a/B', 'a/a', 'a/b.txt', 'a/b/c.txt', 'a/b/d/e', 'a/bc', 'b/x']);
      assert.deepEqual(await keys(s, 'nothing/here'), []);
      assert.deepEqual(await keys(s, 'a/bc'), [], 'a prefix is a folder, not a key');

      assert.equal(await s.deletePrefix('a/b'), 2);
      assert.deepEqual((await keys(s, '')).map(([k]) => k), ['a/B', 'a/a', 'a/b.txt', 'a/bc', 'b/x']);
      assert.equal(await s.deletePrefix('a/bc'), 0, 'never deletes a key named like the prefix');
      assert.ok(await s.head('a/bc'));
      assert.equal(await s.deletePrefix('zzz'), 0);
      assert.equal(await s.deletePrefix('a/'), 4);
      assert.equal(await s.head('a/a'), null);
      assert.equal(await s.deletePrefix(''), 1);
      assert.deepEqual(await keys(s, ''), []);
      await s.put('a/again', Buffer.from('x'));
      assert.deepEqual(await keys(s, ''), [['a/again', 1]]);
    }));

  test(`${name}: maxBytes refusal leaves nothing`, () =>
    withStore(async (s) => {
      const tooLarge = (e: unknown) => e instanceof FreeholdError && e.code === 'too_large';
      await assert.rejects(s.put('m/big', Buffer.alloc(101), { maxBytes: 100 }), tooLarge);
      const chunks = Array.from({ length: 10 }, () => randomBytes(64 * 1024));
      await assert.rejects(s.put('m/big', Readable.from(chunks), { maxBytes: 300 * 1024 }), tooLarge);
      assert.equal(await s.head('m/big'), null);
      assert.deepEqual(await keys(s, ''), []);
      await s.put('m/ok', Buffer.alloc(100), { maxBytes: 100 });
      await s.put('m/ok', Buffer.alloc(200));
      await assert.rejects(s.put('m/ok', Buffer.alloc(101), { maxBytes: 100 }), tooLarge);
      assert.equal((await s.head('m/ok'))!.size, 200, 'a refused overwrite keeps the previous blob');
      assert.deepEqual(await keys(s, ''), [['m/ok', 200]]);
    }));

  test(`${name}: unsafe keys are refused`, () =>
    withStore(async (s) => {
      const bad = ['', '/abs', 'a//b', 'a/', '.', '..', '../x', 'a/../../x', 'a/./b', 'a/..', 'a\\b', '..\\x', 'a\0b', 'x'.repeat(2000)];
      const badRequest = (e: unknown) => e instanceof FreeholdError && e.code === 'bad_request';
      for (const k of bad) {
        await assert.rejects(s.put(k, Buffer.from('x')), badRequest, `put ${JSON.stringify(k)}`);
        await assert.rejects(s.get(k), badRequest, `get ${JSON.stringify(k)}`);
        await assert.rejects(s.head(k), badRequest, `head ${JSON.stringify(k)}`);
        await assert.rejects(s.delete(k), badRequest, `delete ${JSON.stringify(k)}`);
      }
      for (const p of ['..', '../', 'a/../..', '/']) {
        await assert.rejects(s.deletePrefix(p), badRequest, `deletePrefix ${JSON.stringify(p)}`);
        await assert.rejects(keys(s, p), badRequest, `list ${JSON.stringify(p)}`);
      }
      assert.deepEqual(await keys(s, ''), []);
    }));

  test(`${name}: concurrent puts of one key leave one complete blob`, () =>
    withStore(async (s) => {
      const bodies = Array.from({ length: 8 }, (_, i) => Buffer.alloc(256 * 1024 + i, i + 1));
      const infos = await Promise.all(
        bodies.map((b, i) =>
          s.put('c/same', Readable.from(Array.from({ length: 4 }, (_, j) => b.subarray((j * b.length) / 4, ((j + 1) * b.length) / 4))), {
            contentType: `type/${i}`,
          }),
        ),
      );
      const got = (await read(s, 'c/same'))!;
      const i = bodies.findIndex((b) => b.equals(got));
      assert.ok(i >= 0, 'the stored blob is exactly one of the bodies');
      const head = (await s.head('c/same'))!;
      assert.equal(head.etag, sha(got));
      assert.equal(head.size, got.length);
      assert.equal(head.contentType, `type/${i}`);
      assert.equal(infos[i]!.etag, head.etag);
      assert.deepEqual(await keys(s, ''), [['c/same', got.length]]);
    }));

  test(`${name}: 12 MB streamed put`, () =>
    withStore(async (s) => {
      const hash = createHash('sha256');
      const total = 12 * 1024 * 1024;
      let sent = 0;
      // Generated lazily so the test itself never holds the whole body.
      const body = new Readable({
        read() {
          if (sent >= total) return void this.push(null);
          const chunk = randomBytes(Math.min(256 * 1024, total - sent));
          sent += chunk.length;
          hash.update(chunk);
          this.push(chunk);
        },
      });
      const info = await s.put('big/file.bin', body, { contentType: 'application/octet-stream', maxBytes: 20 * 1024 * 1024 });
      const etag = hash.digest('hex');
      assert.equal(info.size, total);
      assert.equal(info.etag, etag);
      const h = createHash('sha256');
      let n = 0;
      for await (const c of (await s.get('big/file.bin'))!) {
        h.update(c as Buffer);
        n += (c as Buffer).length;
      }
      assert.equal(n, total);
      assert.equal(h.digest('hex'), etag);
      const tail = await read(s, 'big/file.bin', { start: total - 10, end: total - 1 });
      assert.equal(tail!.length, 10);
    }));
}
