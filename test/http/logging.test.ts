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
