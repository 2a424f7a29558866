import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.js';
import { startTestServer } from '../helpers/server.js';

/**
 * Behind FREEHOLD_TRUST_PROXY the client address (rate limits, logs) is the one the
 * nearest trusted proxy saw: the X-Forwarded-For entries a client writes itself, to the
 * left of what its proxies append, never pick it.
 */

test('FREEHOLD_TRUST_PROXY: true is one proxy, a number a chain of them, off by default', () => {
  const hops = (v?: string) => loadConfig({ ...(v === undefined ? {} : { FREEHOLD_TRUST_PROXY: v }), FREEHOLD_DATA: '/tmp/unused' }).trustProxy;
  assert.deepEqual([hops(), hops('false'), hops('true'), hops('1'), hops('2'), hops('0'), hops('off')], [0, 0, 1, 1, 2, 0, 0]);
  for (const bad of ['127.0.0.1', 'loopback', '10.0.0.0/8', '-1', '1.5', 'none']) assert.throws(() => hops(bad), /FREEHOLD_TRUST_PROXY must be/, bad);
});

for (const [setting, chain] of [['true', (spoof: string) => `${spoof}, 203.0.113.7`], ['2', (spoof: string) => `${spoof}, 203.0.113.7, 198.51.100.1`]] as const) {
  test(`FREEHOLD_TRUST_PROXY=${setting}: a client cannot pick a fresh address per request`, async () => {
    const server = await startTestServer({ env: { FREEHOLD_TRUST_PROXY: setting, FREEHOLD_RATE_LIMIT: 'on', FREEHOLD_LOGIN_RATE_LIMIT: '2' } });
    try {
      await server.addUser('ann');
      const login = (xff: string) => server.app.inject({
        method: 'POST', url: '/acctapi/login', headers: { 'x-forwarded-for': xff }, payload: { user_id: 'ann', password: 'wrong password' },
      });
      const codes: number[] = [];
      for (let i = 0; i < 3; i++) codes.push((await login(chain(`10.9.${i}.1`))).statusCode);
      assert.deepEqual(codes, [401, 401, 429], 'every attempt counted on 203.0.113.7, the address the proxies saw');
      // Another real client behind the same proxies has its own allowance.
      assert.equal((await login(chain('10.9.9.9').replace('203.0.113.7', '203.0.113.8'))).statusCode, 401);
    } finally {
      await server.close();
    }
  });
}
