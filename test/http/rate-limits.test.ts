import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { addressKey, ipv6Groups, RecentKeys, RequestWindows } from '../../src/http/rate-window.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('request windows', () => {
  test('a key gets max requests per window, then starts again', () => {
    const w = new RequestWindows(2, 1000);
    assert.deepEqual(w.hit('a', 0), { count: 1, resetAt: 1000 });
    assert.equal(w.hit('a', 500).count, 2);
    assert.equal(w.hit('a', 999).count, 3, 'the caller refuses count > max');
    assert.equal(w.hit('b', 999).count, 1, 'keys are counted apart');
    assert.deepEqual(w.hit('a', 1000), { count: 1, resetAt: 2000 });
  });

  test('the map stays bounded: expired windows go first, then the oldest', () => {
    const w = new RequestWindows(5, 1000, 10);
    for (let i = 0; i < 10; i++) w.hit(`old${i}`, 0);
    w.hit('new', 5000); // every window above has expired
    assert.equal(w.size, 1);
    for (let i = 0; i < 9; i++) w.hit(`k${i}`, 5000);
    assert.equal(w.size, 10);
    w.hit('one-more', 5001);
    assert.ok(w.size <= 10);
    assert.equal(w.hit('one-more', 5002).count, 2, 'the newest key survives the eviction');
    assert.equal(w.hit('k8', 5002).count, 2, 'as do recent ones');
    assert.equal(w.hit('new', 5002).count, 1, 'the oldest window was dropped and starts again');
  });
});

describe('address keys', () => {
  test('RecentKeys stays bounded, forgetting the oldest first', () => {
    const keys = new RecentKeys(3);
    for (const k of ['a', 'b', 'c', 'a', 'd']) keys.add(k);
    assert.deepEqual(['a', 'b', 'c', 'd'].map((k) => keys.has(k)), [false, true, true, true]);
  });

  test('IPv6 parses in every textual form', () => {
    assert.deepEqual(ipv6Groups('2001:db8::1'), [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual(ipv6Groups('::'), [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(ipv6Groups('fe80::1%eth0'), [0xfe80, 0, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual(ipv6Groups('::ffff:192.0.2.1'), [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x201]);
    assert.deepEqual(ipv6Groups('1:2:3:4:5:6:7:8'), [1, 2, 3, 4, 5, 6, 7, 8]);
    for (const bad of ['1:2:3', '1::2::3', 'g::1', '1:2:3:4:5:6:7:8::', '::ffff:300.0.0.1', '12345::1']) {
      assert.equal(ipv6Groups(bad), null, bad);
    }
  });

  test('IPv4 counts per address, IPv6 per /64, mapped IPv4 as IPv4', () => {
    assert.equal(addressKey('192.0.2.7'), '192.0.2.7');
    assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(addressKey('2001:db8:1:2::a'), addressKey('2001:0db8:0001:0002:ffff:1:2:3'));
    assert.notEqual(addressKey('2001:db8:1:2::a'), addressKey('2001:db8:1:3::a'));
    assert.equal(addressKey('2001:db8:1:2::a'), '2001:db8:1:2::/64');
  });
});

describe('rate limits over HTTP', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { FREEHOLD_RATE_LIMIT: 'on', FREEHOLD_LOGIN_RATE_LIMIT: '3', FREEHOLD_API_RATE_LIMIT: '4' } });
    await server.addUser('ann');
  });
  after(() => server.close());

  test('every sign-in route draws on one allowance per address, with headers and retry-after', async () => {
    const login = () => server.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: 'ann', password: 'wrong password' } });
    const first = await login();
    assert.equal(first.statusCode, 401);
    assert.equal(first.headers['x-ratelimit-limit'], '3');
    assert.equal(first.headers['x-ratelimit-remaining'], '2');
    assert.ok(Number(first.headers['x-ratelimit-reset']) > 0 && Number(first.headers['x-ratelimit-reset']) <= 60);
    const oauth = await server.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'password', username: 'ann', password: 'wrong' } });
    assert.notEqual(oauth.statusCode, 429);
    assert.equal(oauth.headers['x-ratelimit-remaining'], '1', 'the OAuth token route counts against the same allowance');
    assert.equal((await login()).statusCode, 401);
    const refused = await login();
    assert.equal(refused.statusCode, 429);
    assert.equal(refused.json().error, 'rate_limited');
    assert.match(refused.json().message, /try again in \d+ s/);
    assert.equal(refused.headers['x-ratelimit-remaining'], '0');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    const otherAddress = await server.app.inject({ method: 'POST', url: '/acctapi/login', remoteAddress: '192.0.2.99', payload: { user_id: 'ann', password: 'wrong password' } });
    assert.equal(otherAddress.statusCode, 401, 'another address has its own allowance');
  });

  test('the API allowance is per token and shared by the CEPS routes', async () => {
    const a = await server.appToken('ann', 'com.example.notes');
    const b = await server.appToken('ann', 'com.example.notes');
    const call = (token: string, url: string) => server.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
    const codes: number[] = [];
    for (const url of ['/ceps/query/com.example.notes', '/ceps/read/com.example.notes/x', '/ceps/query/com.example.notes', '/ceps/read/com.example.notes/x', '/ceps/query/com.example.notes']) {
      codes.push((await call(a, url)).statusCode);
    }
    assert.deepEqual(codes, [200, 404, 200, 404, 429]);
    assert.equal((await call(b, '/ceps/query/com.example.notes')).statusCode, 200, 'another token has its own allowance');
  });

  test('made-up tokens count on their address, so a flood of them is limited and spares known tokens', async () => {
    const call = (token: string, from: string) => server.app.inject({ method: 'GET', url: '/ceps/query/com.example.notes', remoteAddress: from, headers: { authorization: `Bearer ${token}` } });
    const bogus = () => `bogus-${Math.random().toString(36).slice(2)}-token-text`;
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await call(bogus(), '192.0.2.50')).statusCode);
    assert.deepEqual(codes, [401, 401, 401, 401, 429]);

    // A token that has proved valid keeps its own allowance while its address floods.
    const known = await server.appToken('ann', 'com.example.notes');
    assert.equal((await call(known, '192.0.2.51')).statusCode, 200);
    for (let i = 0; i < 4; i++) await call(bogus(), '192.0.2.51');
    assert.equal((await call(bogus(), '192.0.2.51')).statusCode, 429);
    assert.equal((await call(known, '192.0.2.51')).statusCode, 200);
    // A token never seen before makes its first request on the address's allowance.
    assert.equal((await call(await server.appToken('ann', 'com.example.notes'), '192.0.2.51')).statusCode, 429);
  });

  test('routes without a limit are not counted', async () => {
    for (let i = 0; i < 6; i++) {
      const res = await server.app.inject({ method: 'GET', url: '/ceps/ping' });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['x-ratelimit-limit'], undefined);
    }
  });

  test('FREEHOLD_RATE_LIMIT=off switches every limit off', async () => {
    const open = await startTestServer({ env: { FREEHOLD_RATE_LIMIT: 'off', FREEHOLD_LOGIN_RATE_LIMIT: '1' } });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await open.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: 'nobody', password: 'wrong password' } });
        assert.equal(res.statusCode, 401);
        assert.equal(res.headers['x-ratelimit-limit'], undefined);
      }
    } finally {
      await open.close();
    }
  });
});
