import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createHash } from 'node:crypto';
import { startS3Server } from '../helpers/s3.js';
import { PostgresScratch, postgresUrl } from '../helpers/postgres.js';
import { multipart } from '../helpers/multipart.js';
import { zipFixture } from '../apps/zip-helpers.js';

const root = path.resolve(import.meta.dirname, '..', '..');
const APP = 'com.example.notes';
const PASSWORD = 'a long passphrase';
const pg = postgresUrl();
/** The processes' schema, dropped when the test is done. */
const scratch = pg ? new PostgresScratch(pg, 'freehold-scale') : null;

interface Proc { child: ChildProcess; url: string }

async function serve(env: NodeJS.ProcessEnv): Promise<Proc> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'serve'], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      const m = /freehold is running at (\S+)/.exec(line);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
  });
  return { child, url };
}

test('two processes on one PostgreSQL + S3 serve the same owners consistently', { skip: pg ? false : 'DATABASE_URL not set (scripts/pg-dev.sh start)' }, async () => {
  const s3 = await startS3Server();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'freehold-scale-'));
  const records = scratch!.schemaUrl();
  const env = {
    ...process.env, FREEHOLD_DATA: dataDir, FREEHOLD_CONFIG: '', FREEHOLD_LOG_LEVEL: 'warn', PORT: '0', FREEHOLD_RATE_LIMIT: 'off',
    FREEHOLD_RECORDS: records, FREEHOLD_BLOBS: s3.url('scale', { createBucket: true }), FREEHOLD_STORAGE_POLL: '100',
    // Node's fetch cannot reach `*.localhost` app hosts; app pages are fetched on the main origin here.
    FREEHOLD_APP_ORIGINS: 'path',
  };
  const procs: Proc[] = [];
  try {
    procs.push(await serve(env), await serve(env));
    const [a, b] = procs as [Proc, Proc];
    // Alternate between the two for everything that follows.
    let turn = 0;
    const next = () => procs[turn++ % 2]!.url;
    const origin = (u: string) => ({ origin: new URL(u).origin });

    // The admin, made from a shell as an operator would.
    const add = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'user', 'add', 'alice', '--password-stdin', '--admin'], { cwd: root, env });
    add.stdin.end(PASSWORD + '\n');
    assert.equal(await new Promise((r) => add.once('exit', r)), 0);

    // Sign in on A; the session works on B.
    const login = await fetch(`${a.url}/acctapi/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...origin(a.url) }, body: JSON.stringify({ user_id: 'alice', password: PASSWORD }) });
    assert.equal(login.status, 200);
    const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const who = await (await fetch(`${b.url}/acctapi/session`, { headers: { cookie } })).json();
    assert.deepEqual(who, { logged_in: true, user_id: 'alice', is_admin: true });

    // Install an app on B; its page (with a page token) is served by A, and that token works on B.
    const zip = readFileSync(await zipFixture('com.example.notes'));
    const { body, contentType } = multipart([{ name: 'file', value: zip, filename: 'app.zip', contentType: 'application/zip' }]);
    const inst = await fetch(`${b.url}/acctapi/apps/install`, { method: 'POST', headers: { 'content-type': contentType, cookie, ...origin(b.url) }, body: new Uint8Array(body) });
    assert.equal(inst.status, 200, await inst.clone().text());
    const page = await (await fetch(`${a.url}/apps/${APP}/index`, { headers: { cookie } })).text();
    const token = /"appToken":"([^"]+)"/.exec(page)?.[1];
    assert.ok(token, 'the page carries a token');
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

    // Writes alternate between processes; every read, on either, sees all of them.
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const w = await fetch(`${next()}/ceps/write/${APP}`, { method: 'POST', headers: auth, body: JSON.stringify({ i }) });
      assert.equal(w.status, 200);
      ids.push((await w.json())._id);
    }
    for (const id of ids) assert.equal((await fetch(`${next()}/ceps/read/${APP}/${id}`, { headers: auth })).status, 200);
    for (const p of procs) assert.equal((await (await fetch(`${p.url}/ceps/query/${APP}?_count=100`, { headers: auth })).json()).length, 40);
    const upd = await fetch(`${a.url}/ceps/update/${APP}/${ids[0]}`, { method: 'PUT', headers: auth, body: JSON.stringify({ i: 'new' }) });
    assert.equal(upd.status, 200);
    assert.equal((await (await fetch(`${b.url}/ceps/read/${APP}/${ids[0]}`, { headers: auth })).json()).i, 'new');

    // A file uploaded through A streams back from B, byte for byte.
    const bytes = Buffer.alloc(3 * 1024 * 1024, 7);
    const up = multipart([{ name: 'options', value: '{"fileName":"big.bin"}' }, { name: 'file', value: bytes, filename: 'big.bin' }]);
    assert.equal((await fetch(`${a.url}/feps/upload/${APP}`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': up.contentType }, body: new Uint8Array(up.body) })).status, 200);
    const down = Buffer.from(await (await fetch(`${b.url}/feps/userfiles/${APP}/alice/big.bin`, { headers: { authorization: `Bearer ${token}` } })).arrayBuffer());
    assert.equal(createHash('sha256').update(down).digest('hex'), createHash('sha256').update(bytes).digest('hex'));

    // An app password made on A is traded on B, once; revoking on A ends it on B at once.
    const pw = (await (await fetch(`${a.url}/acctapi/generateAppPassword?app_name=${APP}`, { headers: { cookie } })).json()).app_password;
    const tok = await fetch(`${b.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'password', username: 'alice', password: pw, client_id: APP }) });
    assert.equal(tok.status, 200);
    const again = await fetch(`${a.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'password', username: 'alice', password: pw, client_id: APP }) });
    assert.equal(again.status, 400, 'the app password was used up on the other process');
    const access = (await tok.json()).access_token;
    assert.equal((await fetch(`${a.url}/oauth/revoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: access }) })).status, 200);
    assert.equal((await fetch(`${b.url}/ceps/query/${APP}`, { headers: { authorization: `Bearer ${access}` } })).status, 401);

    // Sign out on B ends the session (and the page token) on A.
    assert.equal((await fetch(`${b.url}/acctapi/logout`, { method: 'POST', headers: { cookie, ...origin(b.url) } })).status, 200);
    assert.equal((await (await fetch(`${a.url}/acctapi/session`, { headers: { cookie } })).json()).logged_in, false);
    assert.equal((await fetch(`${a.url}/ceps/query/${APP}`, { headers: auth })).status, 401);
  } finally {
    for (const p of procs) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => new Promise((r) => (p.child.exitCode !== null ? r(null) : p.child.once('exit', r)))));
    await s3.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
