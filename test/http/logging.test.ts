import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { startTestServer, TEST_PASSWORD } from '../helpers/server.js';

test('logs are structured JSON and never carry passwords, tokens or cookies', async () => {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
  const server = await startTestServer({ logTo: sink as unknown as import('pino').DestinationStream });
  try {
    await server.addUser('alice');
    const login = await server.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: 'alice', password: TEST_PASSWORD } });
    const cookie = login.cookies.map((c) => `${c.name}=${c.value}`).join('; ');
    const token = await server.appToken('alice', 'com.example.notes');
    await server.app.inject({ method: 'POST', url: '/ceps/write/com.example.notes', headers: { authorization: `Bearer ${token}` }, payload: { a: 1 } });
    await server.app.inject({ method: 'GET', url: `/feps/userfiles/com.example.notes/alice/x.png?token=${token}` });
    await server.app.inject({ method: 'GET', url: '/acctapi/session', headers: { cookie } });
    await server.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: 'alice', password: 'wrong-but-secret-pw' } });
    const pw = (await server.app.inject({ method: 'GET', url: '/acctapi/generateAppPassword?app_name=com.example.notes', headers: { cookie } })).json().app_password;
    await server.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'password', username: 'alice', password: pw, client_id: 'com.example.notes' } });

    assert.ok(lines.length > 5, 'requests were logged');
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), line);
    const all = lines.join('');
    for (const secret of [TEST_PASSWORD, 'wrong-but-secret-pw', token, pw, ...login.cookies.map((c) => c.value)]) {
      assert.ok(!all.includes(secret), `a secret leaked into the logs: ${secret.slice(0, 6)}…`);
    }
    assert.match(all, /token=\[redacted\]/);
  } finally {
    await server.close();
  }
});

test('one access line per request, in pino\'s JSON: level, time, pid, hostname, request id, method, redacted URL, address, status, time taken', async () => {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { lines.push(...String(chunk).split('\n').filter(Boolean)); done(); } });
  const server = await startTestServer({ logTo: sink as unknown as import('pino').DestinationStream });
  try {
    // A URL with quotes, a backslash, non-ASCII (inject sends it percent-encoded) and a secret: the line must stay valid JSON and say no secret.
    const url = '/ceps/ping?x=%22q%22&y=a\\b&z=\u00e9&token=s3cr3t-value';
    const res = await server.app.inject({ method: 'GET', url });
    assert.equal(res.statusCode, 200);
    const access = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request completed');
    assert.equal(access.length, 1, lines.join('\n'));
    const line = access[0]!;
    assert.deepEqual(Object.keys(line), ['level', 'time', 'pid', 'hostname', 'reqId', 'req', 'res', 'responseTime', 'msg']);
    assert.equal(line.level, 30);
    assert.ok(typeof line.time === 'number' && Math.abs((line.time as number) - Date.now()) < 60_000);
    assert.equal(line.pid, process.pid);
    assert.equal(typeof line.hostname, 'string');
    assert.equal(typeof line.reqId, 'string');
    assert.deepEqual(line.req, { method: 'GET', url: '/ceps/ping?x=%22q%22&y=a\\b&z=%C3%A9&token=[redacted]', ip: '127.0.0.1' });
    assert.deepEqual(line.res, { statusCode: 200 });
    assert.ok(typeof line.responseTime === 'number' && (line.responseTime as number) >= 0);
    assert.ok(!lines.join('').includes('s3cr3t-value'));
  } finally {
    await server.close();
  }
});
