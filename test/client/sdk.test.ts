import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { CepsError, FreeholdClient } from '../../src/client/sdk.js';

const APP = 'com.freehold.notes';
const NOTES_APP_DIR = fileURLToPath(new URL('../../examples/notes/', import.meta.url));
const USER = 'alice';

interface Note {
  title: string;
  body: string;
  tag?: string;
}

/** Asserts that a promise rejects with a CepsError of this code and status. */
async function rejectsWith(p: Promise<unknown>, code: string, status: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof CepsError, `expected CepsError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.status, status);
    assert.ok(err.message.length > 0);
    return true;
  });
}

describe('FreeholdClient against a real server', () => {
  let server: TestServer;
  let client: FreeholdClient;
  let appToken: string;

  before(async () => {
    server = await startTestServer({ listen: true });
    await server.addUser(USER);
    // Installed so that its manifest (and so its permissions) exist.
    await server.services.apps.install(USER, { folder: NOTES_APP_DIR });
    const token = await server.appToken(USER, APP);
    appToken = token;
    client = new FreeholdClient({ baseUrl: server.url, token, appName: APP, userId: USER });
  });
  after(() => server.close());

  test('ping reports the server and the token user', async () => {
    const pong = await client.ping();
    assert.equal(pong.server_type, 'freehold');
    assert.equal(pong.ceps_version, '2.0');
    assert.equal(pong.logged_in, true);
    assert.equal(pong.user_id, USER);
  });

  test('write, read, update, delete round trip', async () => {
    const created = await client.write<Note>('', { title: 'first', body: 'hello' });
    assert.equal(typeof created._id, 'string');
    assert.equal(created._date_created, created._date_modified);

    const got = await client.read<Note>('', created._id);
    assert.equal(got.title, 'first');
    assert.equal(got._id, created._id);

    const updated = await client.update<Note>('', created._id, { title: 'second', body: 'changed' });
    assert.equal(updated._date_created, created._date_created);
    assert.ok(updated._date_modified > created._date_modified);
    const reread = await client.read<Note>(APP, created._id);
    assert.deepEqual([reread.title, reread.body], ['second', 'changed']);

    const removed = await client.delete('', created._id);
    assert.equal(removed.success, true);
    assert.equal(removed._id, created._id);
    await rejectsWith(client.read('', created._id), 'not_found', 404);
  });

  test('collections name tables <app>.<collection>', async () => {
    const { _id } = await client.write('tags', { name: 'work' });
    const viaFullName = await client.read(`${APP}.tags`, _id);
    assert.equal(viaFullName.name, 'work');
    assert.equal(client.table('tags'), `${APP}.tags`);
    assert.equal(client.table(''), APP);
  });

  test('query: GET parameters and POST q, newest first', async () => {
    const table = 'q';
    const a = await client.write(table, { kind: 'x', n: 1 });
    const b = await client.write(table, { kind: 'x', n: 2 });
    await client.write(table, { kind: 'y', n: 3 });

    const byParam = await client.query(table, { params: { kind: 'x' } });
    assert.deepEqual(byParam.map((r) => r._id), [b._id, a._id]);

    const numeric = await client.query(table, { params: { n: 2 } });
    assert.deepEqual(numeric.map((r) => r._id), [b._id]);

    const posted = await client.query<{ kind: string; n: number }>(table, { q: { n: { $gte: 2 } }, sort: { n: 1 } });
    assert.deepEqual(posted.map((r) => r.n), [2, 3]);

    const page = await client.query(table, { q: {}, count: 1, skip: 1 });
    assert.equal(page.length, 1);

    const all = await client.query(table);
    assert.equal(all.length, 3);
  });

  test('upsert creates then replaces under a chosen id', async () => {
    const first = await client.upsert('settings', 'prefs', { theme: 'dark' });
    assert.equal(first._id, 'prefs');
    const second = await client.upsert('settings', 'prefs', { theme: 'light' });
    assert.ok(second._date_modified > first._date_modified);
    assert.equal((await client.read('settings', 'prefs')).theme, 'light');
  });

  test('updateFields by id and by filter; deleteWhere', async () => {
    const t = 'bulk';
    const one = await client.write(t, { title: 'a', done: false, keep: 'yes' });
    await client.write(t, { title: 'b', done: false });
    await client.updateFields(t, one._id, { done: true });
    const after1 = await client.read(t, one._id);
    assert.equal(after1.done, true);
    assert.equal(after1.keep, 'yes', 'a partial update keeps the other fields');

    await client.updateFields(t, { done: false }, { done: true });
    assert.equal((await client.query(t, { q: { done: false } })).length, 0);

    await client.deleteWhere(t, { title: 'b' });
    const left = await client.query(t);
    assert.deepEqual(left.map((r) => r._id), [one._id]);
  });

  test('upload bytes, read them back by URL, token URL and readFile; delete', async () => {
    const bytes = Buffer.from('freehold file body \u00e9');
    const rec = await client.upload(bytes, { fileName: 'note one.txt', targetFolder: 'attachments', contentType: 'text/plain', data: { note: 'n1' } });
    assert.equal(rec._id, 'attachments/note one.txt');
    assert.deepEqual([rec._file_size, rec._file_extension, rec._mime_type, rec._UploadStatus, rec.note], [bytes.length, 'txt', 'text/plain', 'complete', 'n1']);

    const files = await client.query('files', { q: { note: 'n1' } });
    assert.deepEqual(files.map((f) => f._id), [rec._id]);

    const plainUrl = client.fileUrl(rec._id);
    assert.ok(plainUrl.startsWith(`${server.url}/feps/userfiles/${APP}/${USER}/attachments/note%20one.txt`));
    const anonymous = await fetch(plainUrl);
    assert.equal(anonymous.status, 401, 'a file URL without a token is refused');

    const tokenised = await fetch(client.fileUrl(rec._id, { withToken: true }));
    assert.equal(tokenised.status, 200);
    assert.deepEqual(Buffer.from(await tokenised.arrayBuffer()), bytes);

    assert.deepEqual(Buffer.from(await client.readFile(rec._id)), bytes);

    // A link for that file alone: its own token, not the app's.
    const shared = await client.sharedFileUrl(rec._id);
    assert.ok(shared.startsWith(plainUrl + '?fileToken=ft1.'), shared);
    assert.ok(!shared.includes(appToken), 'no app token in it');
    const viaShared = await fetch(shared);
    assert.equal(viaShared.status, 200);
    assert.deepEqual(Buffer.from(await viaShared.arrayBuffer()), bytes);

    const blobRec = await client.upload(new Blob(['<b>x</b>'], { type: 'text/html' }), { fileName: 'b.html' });
    assert.equal(blobRec._id, 'b.html');

    await client.deleteFile(rec._id);
    await rejectsWith(client.readFile(rec._id), 'not_found', 404);
  });

  test('upload refuses nameless bytes before any request', async () => {
    await assert.rejects(client.upload(Buffer.from('x')), TypeError);
  });

  test('permissions lists the app permissions', async () => {
    const perms = await client.permissions();
    assert.deepEqual(perms, [], 'the notes app declares no permissions');
  });

  test('errors are CepsErrors with the server code and status', async () => {
    const stranger = new FreeholdClient({ baseUrl: server.url, token: 'not-a-token', appName: APP });
    await rejectsWith(stranger.query(''), 'unauthorized', 401);
    assert.equal((await stranger.ping()).logged_in, false, 'a bad token pings as logged out, not as an error');

    await rejectsWith(client.write('com.other.app', { x: 1 }), 'forbidden', 403);
    await rejectsWith(client.write('', { _secret: 1 }), 'invalid_record', 400);
    await rejectsWith(client.update('', 'no-such-id', { x: 1 }), 'not_found', 404);
    await rejectsWith(client.query('', { q: { $where: 'true' } }), 'invalid_query', 400);
  });

  test('an unreachable server is a network CepsError with status 0', async () => {
    const down = new FreeholdClient({ baseUrl: 'http://127.0.0.1:9', token: 't', appName: APP });
    await rejectsWith(down.ping(), 'network', 0);
  });

  test('a custom fetch sees every call, with the bearer token and JSON body', async () => {
    const seen: { url: string; auth: string | null; type: string | null }[] = [];
    const token = await server.appToken(USER, APP);
    const spy: typeof fetch = async (input, init) => {
      const headers = new Headers(init?.headers);
      seen.push({ url: String(input), auth: headers.get('authorization'), type: headers.get('content-type') });
      return fetch(input, init);
    };
    const c = new FreeholdClient({ baseUrl: `${server.url}/`, token, appName: APP, fetch: spy });
    await c.write('', { via: 'spy' });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.url, `${server.url}/ceps/write/${APP}`);
    assert.equal(seen[0]!.auth, `Bearer ${token}`);
    assert.equal(seen[0]!.type, 'application/json');
  });

  test('authorizationRequest and fromAuthorizationCode: the code flow with PKCE gives a working client', async () => {
    const redirectUri = 'http://127.0.0.1:9/callback';
    const asked = await FreeholdClient.authorizationRequest({ baseUrl: `${server.url}/`, appName: APP, redirectUri });
    const url = new URL(asked.url);
    assert.equal(url.pathname, '/oauth/authorize');
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(url.searchParams.get('state'), asked.state);
    assert.match(asked.verifier, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(url.searchParams.get('code_challenge'), createHash('sha256').update(asked.verifier).digest('base64url'));

    // The owner allows it on their page (what its script posts).
    const cookie = await server.signIn(USER);
    const answer = await fetch(`${server.url}/oauth/authorize`, {
      method: 'POST', headers: { cookie, 'content-type': 'application/json' },
      body: JSON.stringify({ ...Object.fromEntries(url.searchParams), approve: true }),
    });
    assert.equal(answer.status, 200, await answer.clone().text());
    const back = new URL(((await answer.json()) as { redirect: string }).redirect);
    assert.equal(back.searchParams.get('state'), asked.state);

    const c = await FreeholdClient.fromAuthorizationCode({
      baseUrl: server.url, appName: APP, code: back.searchParams.get('code')!, redirectUri, verifier: asked.verifier,
    });
    assert.equal(c.userId, USER);
    const { _id } = await c.write('', { from: 'authorization code' });
    assert.equal((await client.read('', _id)).from, 'authorization code');
    await assert.rejects(
      FreeholdClient.fromAuthorizationCode({ baseUrl: server.url, appName: APP, code: back.searchParams.get('code')!, redirectUri, verifier: asked.verifier }),
      (err: unknown) => err instanceof CepsError && err.code === 'invalid_grant',
      'a code works once',
    );
  });

  test('fromAppPassword trades a one-time app password for a working client', async () => {
    const cookie = await server.signIn(USER);
    const res = await fetch(`${server.url}/acctapi/generateAppPassword?app_name=${APP}`, { headers: { cookie } });
    assert.equal(res.status, 200, await res.clone().text());
    const { app_password } = (await res.json()) as { app_password: string };

    const c = await FreeholdClient.fromAppPassword({ baseUrl: server.url, userId: USER, appPassword: app_password, appName: APP });
    assert.equal(c.appName, APP);
    assert.equal(c.userId, USER);
    const { _id } = await c.write('', { from: 'app password' });
    assert.equal((await client.read('', _id)).from, 'app password');

    await assert.rejects(
      FreeholdClient.fromAppPassword({ baseUrl: server.url, userId: USER, appPassword: app_password, appName: APP }),
      (err: unknown) => err instanceof CepsError && err.status >= 400 && err.status < 500,
      'a one-time password works once',
    );
  });
});
