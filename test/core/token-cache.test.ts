import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteRecordStore } from '../../src/storage/sqlite/record-store.js';
import { TokenService } from '../../src/core/auth/tokens.js';
import { TokenCache } from '../../src/core/auth/token-cache.js';
import { loadConfig } from '../../src/config.js';
import { startTestServer } from '../helpers/server.js';
import { OWN, storeView } from '../helpers/store-view.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Two TokenServices on two connections to one SQLite file stand for two processes
 * sharing a store (the CLI beside a running server, or two server processes).
 */
async function twoProcesses(cacheMs: number) {
  const dir = mkdtempSync(path.join(tmpdir(), 'freehold-token-cache-'));
  const file = path.join(dir, 'host.db');
  const storeA = new SqliteRecordStore(file);
  const storeB = new SqliteRecordStore(file);
  await storeA.init();
  await storeB.init();
  const a = new TokenService(storeA, 'secret', cacheMs);
  const b = new TokenService(storeB, 'secret', cacheMs);
  return {
    a, b,
    async close() {
      await storeA.close();
      await storeB.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const claims = (expiresAt = Date.now() + 3_600_000) => ({ kind: 'app' as const, userId: 'alice', ownerId: 'alice', appName: 'com.example.notes', expiresAt });

test('a revocation made in this process is seen at once, even with the cache on', async () => {
  const p = await twoProcesses(60_000);
  try {
    const token = await p.a.issue(claims());
    assert.equal((await p.a.check(token, 'app')).ok, true);
    assert.equal((await p.a.check(token, 'app')).ok, true); // now from the cache
    assert.equal(await p.a.revoke(token), true);
    assert.deepEqual(await p.a.check(token, 'app'), { ok: false, reason: 'invalid' });

    const other = await p.a.issue(claims());
    assert.equal((await p.a.check(other, 'app')).ok, true);
    assert.equal(await p.a.revokeFor('alice', 'com.example.notes'), 1);
    assert.equal((await p.a.check(other, 'app')).ok, false, 'revokeFor empties the cache');
  } finally {
    await p.close();
  }
});

test('a revocation made by another process is seen at once: its commit moves the store\'s change stamp', async () => {
  const p = await twoProcesses(60_000);
  try {
    const token = await p.a.issue(claims());
    assert.equal((await p.a.check(token, 'app')).ok, true);
    assert.equal((await p.a.check(token, 'app')).ok, true); // cached in a
    assert.equal(await p.b.revoke(token), true);
    assert.deepEqual(await p.a.check(token, 'app'), { ok: false, reason: 'invalid' });
  } finally {
    await p.close();
  }
});


/** A TokenService over a store that counts its get() calls; `stamp: false` hides changeStamp. */
async function counted(opts: { stamp: boolean }) {
  const dir = mkdtempSync(path.join(tmpdir(), 'freehold-token-count-'));
  const store = new SqliteRecordStore(path.join(dir, 'host.db'));
  await store.init();
  const other = new SqliteRecordStore(path.join(dir, 'host.db'));
  await other.init();
  let gets = 0;
  const view = storeView(store, (prop) => {
    if (prop === 'get') return (...args: Parameters<SqliteRecordStore['get']>) => { gets++; return store.get(...args); };
    if (prop === 'changeStamp' && !opts.stamp) return undefined;
    return OWN;
  });
  return {
    tokens: new TokenService(view, 'secret', 60_000),
    other,
    gets: () => gets,
    async close() {
      await other.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('repeated checks of one token look it up once, until another connection commits anything', async () => {
  const c = await counted({ stamp: true });
  try {
    const token = await c.tokens.issue(claims());
    for (let i = 0; i < 5; i++) assert.equal((await c.tokens.check(token, 'app')).ok, true);
    assert.equal(c.gets(), 1);
    await c.other.put('alice', 'com.example.notes', { _id: 'x', _date_created: 1, _date_modified: 1 });
    assert.equal((await c.tokens.check(token, 'app')).ok, true);
    assert.equal(c.gets(), 2, 'a commit by another connection makes the next check look again');
    assert.equal((await c.tokens.check(token, 'app')).ok, true);
    assert.equal(c.gets(), 2);
  } finally {
    await c.close();
  }
});

test('a store that cannot report others\' commits gets no cache: every check looks', async () => {
  const c = await counted({ stamp: false });
  try {
    const token = await c.tokens.issue(claims());
    for (let i = 0; i < 3; i++) assert.equal((await c.tokens.check(token, 'app')).ok, true);
    assert.equal(c.gets(), 3);
  } finally {
    await c.close();
  }
});

test('a cached token still expires on time, and the wrong kind is refused from the cache too', async () => {
  const p = await twoProcesses(60_000);
  try {
    const token = await p.a.issue(claims(Date.now() + 120));
    assert.equal((await p.a.check(token, 'app')).ok, true);
    assert.deepEqual(await p.a.check(token, 'account'), { ok: false, reason: 'invalid' });
    await sleep(200);
    assert.deepEqual(await p.a.check(token, 'app'), { ok: false, reason: 'expired' });
    assert.deepEqual(await p.a.check(token, 'app'), { ok: false, reason: 'invalid' }, 'the expired row was deleted');
  } finally {
    await p.close();
  }
});

test('single-use secrets are never answered from the cache: an app password works once across processes', async () => {
  const p = await twoProcesses(60_000);
  try {
    const { password } = await p.a.issueAppPassword('alice', 'com.example.notes', 60_000, false);
    assert.equal((await p.a.check(password, 'app_password')).ok, true);
    await p.b.exchangeAppPassword('alice', password, 'com.example.notes');
    await assert.rejects(p.a.exchangeAppPassword('alice', password, 'com.example.notes'), /Invalid app password|already used/);
  } finally {
    await p.close();
  }
});

test('a lookup that overlaps a revocation is not cached: the next check asks the store again', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'freehold-token-race-'));
  const store = new SqliteRecordStore(path.join(dir, 'host.db'));
  await store.init();
  let open!: () => void;
  const gate = new Promise<void>((resolve) => { open = resolve; });
  let gated = false;
  // The store answers get() only when the gate opens, having read the row before.
  const slowGets = storeView(store, (prop) => {
    if (prop !== 'get' || !gated) return OWN;
    return async (...args: Parameters<SqliteRecordStore['get']>) => {
      const row = await store.get(...args);
      await gate;
      return row;
    };
  });
  try {
    const tokens = new TokenService(slowGets, 'secret', 60_000);
    const token = await tokens.issue(claims());
    gated = true;
    const inFlight = tokens.check(token, 'app');
    await sleep(20); // the lookup has read the row and waits at the gate
    gated = false;
    assert.equal(await tokens.revoke(token), true);
    open();
    assert.equal((await inFlight).ok, true, 'it read the row before the revocation');
    assert.deepEqual(await tokens.check(token, 'app'), { ok: false, reason: 'invalid' }, 'and that answer was not kept');
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the cache keeps only what was found, under the stamp it was found with, at most its cap, oldest out first', () => {
  const c = new TokenCache<number>(1000, 3);
  for (let i = 0; i < 5; i++) c.set(`h${i}`, i, 7, 0);
  assert.equal(c.size, 3);
  assert.equal(c.get('h0', 7, 1), undefined);
  assert.equal(c.get('h1', 7, 1), undefined);
  assert.equal(c.get('h4', 7, 1), 4);
  assert.equal(c.get('h4', 7, 1000), undefined, 'an entry lives ttlMs, no longer');
  assert.equal(c.get('h3', 8, 1), undefined, 'nor past a change of stamp');
  assert.equal(c.get('h3', 7, 1), undefined, 'and is dropped then');
  const off = new TokenCache<number>(0);
  off.set('h', 1, 7, 0);
  assert.equal(off.size, 0);
});

test('FREEHOLD_TOKEN_CACHE_MS sets the cache time; over HTTP, a token revoked in the server is refused at once', async () => {
  assert.equal(loadConfig({ FREEHOLD_CONFIG: '' }).tokenCacheMs, 1000);
  assert.equal(loadConfig({ FREEHOLD_CONFIG: '', FREEHOLD_TOKEN_CACHE_MS: '0' }).tokenCacheMs, 0);
  assert.throws(() => loadConfig({ FREEHOLD_CONFIG: '', FREEHOLD_TOKEN_CACHE_MS: '-5' }), /FREEHOLD_TOKEN_CACHE_MS/);

  const server = await startTestServer();
  try {
    await server.addUser('alice');
    const token = await server.appToken('alice', 'com.example.notes');
    const ask = () => server.app.inject({ method: 'GET', url: '/ceps/ping', headers: { authorization: `Bearer ${token}` } });
    assert.equal((await ask()).json().logged_in, true);
    assert.equal((await ask()).json().logged_in, true);
    await server.services.tokens.revoke(token);
    assert.equal((await ask()).json().logged_in, false);
  } finally {
    await server.close();
  }
});
