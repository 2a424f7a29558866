import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { spawn, spawnSync } from 'node:child_process';
import { startTestServer, TEST_PASSWORD } from '../helpers/server.js';

const endOfTurn = () => new Promise((resolve) => setImmediate(resolve));

test('logs are structured JSON and never carry passwords, tokens or cookies', async () => {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { lines.push(...String(chunk).split('\n').filter(Boolean)); done(); } });
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

    await endOfTurn(); // access lines reach the destination when the turn ends
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
    await endOfTurn();
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

test('access lines of one turn reach the destination in one write; a quiet server\'s lines are written within a second, and held ones at exit', async () => {
  const writes: string[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { writes.push(String(chunk)); done(); } });
  const server = await startTestServer({ logTo: sink as unknown as import('pino').DestinationStream });
  try {
    writes.length = 0;
    await Promise.all(['/ceps/ping?n=1', '/ceps/ping?n=2', '/ceps/ping?n=3'].map((url) => server.app.inject({ method: 'GET', url })));
    await endOfTurn();
    const access = writes.filter((w) => w.includes('request completed'));
    const urls = access.join('').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { req: { url: string } }).req.url);
    assert.deepEqual(urls.sort(), ['/ceps/ping?n=1', '/ceps/ping?n=2', '/ceps/ping?n=3']);
    assert.ok(access.length < 3, `three lines in ${access.length} writes`);
  } finally {
    await server.close();
  }
  // The stdout writer (no destination given) flushes a lone line after a second, not at 4 KB.
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', `
    import { createLogger, accessWriterOf } from ${JSON.stringify(new URL('../../src/logger.ts', import.meta.url).href)};
    const log = createLogger('info');
    accessWriterOf(log)({ reqId: 'r1', method: 'GET', url: '/lone', ip: '127.0.0.1', statusCode: 200, responseTime: 1 });
    setInterval(() => {}, 1000);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => resolve(String(d)));
      child.once('exit', () => reject(new Error('exited without writing the line')));
      // Far longer than the flush interval; without it the line would wait for 4 KB more, for ever.
      setTimeout(() => reject(new Error('the lone line was not written within 10 s')), 10_000).unref();
    });
    assert.match(line, /"url":"\/lone"/);
  } finally {
    child.kill();
  }
  // A line still held when the process exits in the same turn is written on the way out.
  const exiting = spawnSync(process.execPath, ['--import', 'tsx', '-e', `
    import { createLogger, accessWriterOf } from ${JSON.stringify(new URL('../../src/logger.ts', import.meta.url).href)};
    accessWriterOf(createLogger('info'))({ reqId: 'r2', method: 'GET', url: '/at-exit', ip: '127.0.0.1', statusCode: 200, responseTime: 1 });
    process.exit(0);
  `], { encoding: 'utf8' });
  assert.equal(exiting.status, 0, exiting.stderr);
  assert.match(exiting.stdout, /"url":"\/at-exit"/);
});

test('only the server\'s own failures are logged as errors: not a full quota, not a client hanging up mid-upload', async () => {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { lines.push(...String(chunk).split('\n').filter(Boolean)); done(); } });
  const server = await startTestServer({ listen: true, logTo: sink as unknown as import('pino').DestinationStream, config: { quotaRecords: 1 } });
  try {
    await server.addUser('alice');
    const token = await server.appToken('alice', 'com.example.notes');
    const write = () => fetch(`${server.url}/ceps/write/com.example.notes`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"a":1}' });
    assert.equal((await write()).status, 200);
    assert.equal((await write()).status, 507);

    // An upload whose client goes away halfway through its body.
    const { port } = new URL(server.url);
    await new Promise<void>((resolve) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.write(`PUT /feps/upload/com.example.notes HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
          'Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="x.bin"\r\n\r\n' + 'x'.repeat(5000));
        setTimeout(() => { socket.destroy(); resolve(); }, 300);
      });
    });
    await new Promise((r) => setTimeout(r, 300));
    await endOfTurn();

    const parsed = lines.map((l) => JSON.parse(l) as { level: number; code?: string; msg: string });
    assert.ok(parsed.some((l) => l.code === 'quota_exceeded' && l.level === 30), 'the 507 is logged, at info');
    assert.deepEqual(parsed.filter((l) => l.level >= 50).map((l) => l.msg), [], 'no error lines');
  } finally {
    await server.close();
  }
});

test('a request\'s own lines carry its request id, as its access line does', async () => {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { lines.push(...String(chunk).split('\n').filter(Boolean)); done(); } });
  const server = await startTestServer({ logTo: sink as unknown as import('pino').DestinationStream, config: { quotaRecords: 1 } });
  try {
    await server.addUser('alice');
    const token = await server.appToken('alice', 'com.example.notes');
    const write = () => server.app.inject({ method: 'POST', url: '/ceps/write/com.example.notes', headers: { authorization: `Bearer ${token}` }, payload: { a: 1 } });
    assert.equal((await write()).statusCode, 200);
    assert.equal((await write()).statusCode, 507);
    await endOfTurn();
    const parsed = lines.map((l) => JSON.parse(l) as { reqId?: string; code?: string; msg: string; res?: { statusCode: number } });
    const own = parsed.find((l) => l.code === 'quota_exceeded');
    const access = parsed.find((l) => l.msg === 'request completed' && l.res?.statusCode === 507);
    assert.ok(own && access, lines.join('\n'));
    assert.equal(typeof own.reqId, 'string');
    assert.equal(own.reqId, access.reqId);
  } finally {
    await server.close();
  }
});

test('the lazy request logger writes what the pino child would, and only makes the child when it logs', async () => {
  const { LazyRequestLogger } = await import('../../src/http/request-logger.js');
  const { createLogger } = await import('../../src/logger.js');
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { lines.push(...String(chunk).split('\n').filter(Boolean)); done(); } });
  const root = createLogger('info', sink as unknown as import('pino').DestinationStream);
  let made = 0;
  const counting = Object.create(root, { child: { value: (b: object, o: object) => { made++; return root.child(b, o); } } }) as typeof root;
  const quiet = new LazyRequestLogger(counting, { reqId: 'r1' }, { level: 'warn' });
  assert.equal(quiet.level, 'warn');
  const idle = new LazyRequestLogger(counting, { reqId: 'r0' }, {});
  assert.equal(idle.level, 'info');
  assert.equal(made, 0, 'no child until a line is logged');
  quiet.info('not at warn');
  quiet.warn({ code: 'x' }, 'said %s', 'once');
  quiet.child({ part: 2 }).error('from a child');
  await endOfTurn();
  assert.equal(made, 1);
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(parsed.map((l) => [l.level, l.reqId, l.msg, l.code, l.part]), [[40, 'r1', 'said once', 'x', undefined], [50, 'r1', 'from a child', undefined, 2]]);
});

test('access lines quote their strings exactly as JSON.stringify does', async () => {
  const { jsonString } = await import('../../src/logger.js');
  const samples = ['', 'plain', '/ceps/read/a.b/c?d=1&e=%22', 'quote " and \\ backslash', 'tab\tnew\nline\u0000nul\u001f', 'latin1 é ÿ \u007f \u0080',
    '日本語 ✓ emoji \ud83d\ude00', 'lone \ud800 high', 'lone \udc00 low', '\u2028\u2029'];
  for (const s of samples) assert.equal(jsonString(s), JSON.stringify(s), s);
});
