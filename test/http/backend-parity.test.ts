import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { forEachRecordBackend } from '../helpers/backends.js';
import { multipart } from '../helpers/multipart.js';
import type { TestServer } from '../helpers/server.js';

/**
 * Owner features whose records carry ids with a `/` (a grant is `<app>/<name>`, a file
 * record's id is its path, a client may choose a page address), end to end over HTTP on
 * every record backend: granting a permission, uploading into a folder, writing with
 * such an id, and taking them all through export and import.
 */

const APP = 'com.example.notes';
const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/apps/com.example.notes');
const content = Buffer.from('a file in a folder\n');

async function owner(server: TestServer, user: string): Promise<{ cookie: string; token: string }> {
  await server.addUser(user);
  await server.services.apps.install(user, { folder: FIXTURE });
  return { cookie: await server.signIn(user), token: await server.appToken(user, APP) };
}

async function granted(server: TestServer, token: string, name: string): Promise<boolean> {
  const res = await server.app.inject({ method: 'GET', url: '/ceps/perms/get', headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.statusCode, 200, res.body);
  return (res.json() as Array<{ name: string; granted: boolean }>).find((p) => p.name === name)!.granted;
}

forEachRecordBackend('grants and files in folders', 'fhparity', (label, start) => {
  test(`${label}: a grant and a file in a folder work, and survive export and import`, async () => {
    const a = await start();
    const b = await start();
    try {
      const { cookie, token } = await owner(a, 'alice');
      const name = ((await a.app.inject({ method: 'GET', url: '/ceps/perms/get', headers: { authorization: `Bearer ${token}` } })).json() as Array<{ name: string }>)[0]!.name;
      const change = await a.app.inject({
        method: 'PUT', url: '/feps/permissions/change', headers: { cookie },
        payload: { change: { name, requestor_app: APP, action: 'Accept', table_id: null }, targetApp: APP },
      });
      assert.equal(change.statusCode, 200, change.body);
      assert.equal(await granted(a, token, name), true);

      const { body, contentType } = multipart([
        { name: 'options', value: JSON.stringify({ targetFolder: 'sub/dir', fileName: 'f1.txt' }) },
        { name: 'file', value: content, filename: 'f1.txt', contentType: 'text/plain' },
      ]);
      const up = await a.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: body, headers: { 'content-type': contentType, authorization: `Bearer ${token}` } });
      assert.equal(up.statusCode, 200, up.body);
      assert.equal(up.json()._id, 'sub/dir/f1.txt');
      const download = (s: TestServer, user: string, t: string) => s.app.inject({ method: 'GET', url: `/feps/userfiles/${APP}/${user}/sub/dir/f1.txt`, headers: { authorization: `Bearer ${t}` } });
      assert.equal((await download(a, 'alice', token)).rawPayload.toString(), content.toString());
      const listed = (await a.app.inject({ method: 'GET', url: `/ceps/query/${APP}.files`, headers: { authorization: `Bearer ${token}` } })).json() as Array<{ _id: string }>;
      assert.deepEqual(listed.map((r) => r._id), ['sub/dir/f1.txt']);
      // The app's own fields merged into its file record (freezr's updateFields on 'files'), by path and by query.
      const merge = await a.app.inject({ method: 'PUT', url: `/feps/update/${APP}.files/sub/dir/f1.txt`, headers: { authorization: `Bearer ${token}` }, payload: { caption: 'c' } });
      assert.equal(merge.statusCode, 200, merge.body);
      const mergeByQuery = await a.app.inject({ method: 'PUT', url: `/feps/update/${APP}.files`, headers: { authorization: `Bearer ${token}` }, payload: { q: { _file_extension: 'txt' }, keys: { seen: 1 } } });
      assert.equal(mergeByQuery.json().nModified, 1, mergeByQuery.body);
      const fileRecord = (s: TestServer, t: string) => s.app.inject({ method: 'GET', url: `/ceps/read/${APP}.files/${encodeURIComponent('sub/dir/f1.txt')}`, headers: { authorization: `Bearer ${t}` } });
      const merged = (await fileRecord(a, token)).json();
      assert.deepEqual([merged.caption, merged.seen, merged._file_size, merged._mime_type], ['c', 1, content.length, 'text/plain']);

      // A client-chosen id as freezr apps make them (a page address), on every backend.
      const pageId = 'https://example.com/päge 1?x=a&b=%20';
      const write = await a.app.inject({ method: 'POST', url: `/feps/write/${APP}/${encodeURIComponent(pageId)}`, headers: { authorization: `Bearer ${token}` }, payload: { seen: true } });
      assert.equal(write.statusCode, 200, write.body);
      assert.equal(write.json()._id, pageId);
      const readPage = (s: TestServer, t: string) => s.app.inject({ method: 'GET', url: `/ceps/read/${APP}/${encodeURIComponent(pageId)}`, headers: { authorization: `Bearer ${t}` } });
      assert.equal((await readPage(a, token)).json().seen, true);

      const exported = await a.app.inject({ method: 'GET', url: '/acctapi/export', headers: { cookie } });
      assert.equal(exported.statusCode, 200);
      // Into another account, without the app: the archive brings it.
      const target = await owner(b, 'bob');
      await b.services.apps.remove('bob', APP);
      const zip = multipart([{ name: 'file', value: exported.rawPayload, filename: 'export.zip', contentType: 'application/zip' }]);
      const imported = await b.app.inject({ method: 'POST', url: '/acctapi/import', payload: zip.body, headers: { 'content-type': zip.contentType, cookie: target.cookie } });
      assert.equal(imported.statusCode, 200, imported.body);
      const tokenB = await b.appToken('bob', APP);
      assert.equal(await granted(b, tokenB, name), true);
      assert.equal((await download(b, 'bob', tokenB)).rawPayload.toString(), content.toString());
      assert.deepEqual((await fileRecord(b, tokenB)).json(), merged, 'the file record comes across whole');
      assert.equal((await readPage(b, tokenB)).json().seen, true);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

forEachRecordBackend('queries look into arrays', 'fharrays', (label, start) => {
  test(`${label}: a query matches an array field by any of its elements, indexed or not, over CEPS and FEPS`, async () => {
    const server = await start();
    try {
      await server.addUser('alice');
      await server.services.apps.install('alice', { folder: FIXTURE });
      const auth = { authorization: `Bearer ${await server.appToken('alice', APP)}` };
      const table = `${APP}.posts`; // indexes `title` and (`meta.tag`, `created`) by its manifest
      const ids = (res: { statusCode: number; body: string; json: () => unknown }): string[] => {
        assert.equal(res.statusCode, 200, res.body);
        return (res.json() as Array<{ label: string }>).map((r) => r.label).sort();
      };
      const get = async (query: string) => ids(await server.app.inject({ method: 'GET', url: `/ceps/query/${table}?${query}`, headers: auth }));
      const post = async (q: unknown, route = 'ceps') => ids(await server.app.inject({ method: 'POST', url: `/${route}/query/${table}`, headers: auth, payload: { q } }));

      // Before any array is stored, and after: the plan may change, the answers may not be stale.
      for (const [labelOf, fields] of [['plain', { title: 'work', tags: 'work', meta: { tag: 'work' } }], ['five', { title: 5, tags: 5, meta: { tag: 5 } }]] as const) {
        const res = await server.app.inject({ method: 'POST', url: `/ceps/write/${table}`, headers: auth, payload: { label: labelOf, ...fields } });
        assert.equal(res.statusCode, 200, res.body);
      }
      assert.deepEqual(await get('title=work'), ['plain']);
      assert.deepEqual(await get('meta.tag=5'), ['five']);
      for (const [labelOf, value] of [['list', ['home', 'work', 5]], ['other', ['home', '5']]] as const) {
        const res = await server.app.inject({ method: 'POST', url: `/ceps/write/${table}`, headers: auth, payload: { label: labelOf, title: value, tags: value, meta: { tag: value } } });
        assert.equal(res.statusCode, 200, res.body);
      }
      for (const field of ['title', 'tags', 'meta.tag']) {
        assert.deepEqual(await get(`${field}=work`), ['list', 'plain'], field);
        assert.deepEqual(await get(`${field}=5`), ['five', 'list', 'other'], `${field}: a numeric-looking value matches the string or the number`);
        assert.deepEqual(await post({ [field]: 'home' }), ['list', 'other'], field);
        assert.deepEqual(await post({ [field]: 5 }), ['five', 'list'], field);
        assert.deepEqual(await post({ [field]: { $in: ['nothing', 'work'] } }), ['list', 'plain'], field);
        assert.deepEqual(await post({ [field]: { $ne: 'home' } }), ['five', 'plain'], field);
        assert.deepEqual(await post({ [field]: { $nin: ['home', 5] } }), ['plain'], field);
        assert.deepEqual(await post({ [field]: { $gt: 4 } }), ['five', 'list'], field);
        assert.deepEqual(await post({ [field]: { $regex: '^ho' } }, 'feps'), ['list', 'other'], field);
      }
    } finally {
      await server.close();
    }
  });
});
