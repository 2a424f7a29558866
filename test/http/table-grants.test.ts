import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestServer } from '../helpers/server.js';
import { forEachRecordBackend } from '../helpers/backends.js';
import { FIXTURES } from '../apps/zip-helpers.js';

const NOTES = 'com.example.notes';
const POSTS = `${NOTES}.posts`;
const VIEWER = 'com.example.viewer';
const USER = 'alice';

/** An app asking for each kind of table-level access to the notes app's tables. */
function viewerFolder(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'freehold-viewer-'));
  writeFileSync(path.join(dir, 'index.html'), '<p>viewer</p>');
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({
    identifier: VIEWER, display_name: 'Viewer', version: '1.0.0',
    pages: { index: { page_title: 'Viewer', html_file: 'index.html' } },
    permissions: [
      { name: 'read_notes', type: 'read_all', table_id: NOTES },
      { name: 'add_posts', type: 'write_own', table_id: POSTS },
      { name: 'edit_notes', type: 'write_all', table_id: NOTES },
      { name: 'notes_files', type: 'write_all', table_id: [`${NOTES}.files`, `${NOTES}.Files`, 'dev.ceps.messages.gotx'] },
    ],
  }));
  return dir;
}

forEachRecordBackend('an app reaches another app\'s tables only as the owner granted', 'fhgrants', (_label, start) => {
  let s: TestServer;
  let notes: Record<string, string>;
  let viewer: Record<string, string>;
  const folder = viewerFolder();
  const call = async (auth: Record<string, string>, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: object) => {
    const res = await s.app.inject({ method, url, headers: auth, ...(payload ? { payload } : {}) });
    return { status: res.statusCode, body: res.json() as Record<string, unknown> & Array<Record<string, unknown>> };
  };
  const grant = (name: string, action: 'Accept' | 'Deny') => s.services.permissions.change(USER, { name, requestor_app: VIEWER, action });

  before(async () => {
    s = await start();
    await s.addUser(USER);
    await s.services.apps.install(USER, { folder: path.join(FIXTURES, NOTES) });
    await s.services.apps.install(USER, { folder });
    notes = { authorization: `Bearer ${await s.appToken(USER, NOTES)}` };
    viewer = { authorization: `Bearer ${await s.appToken(USER, VIEWER)}` };
  });
  after(async () => {
    await s?.close();
    rmSync(folder, { recursive: true, force: true });
  });

  test('nothing before a grant, read_all reads and queries, and taking it back ends that at once', async () => {
    const note = (await call(notes, 'POST', `/ceps/write/${NOTES}`, { title: 'mine' })).body._id as string;
    assert.equal((await call(viewer, 'GET', `/ceps/read/${NOTES}/${note}`)).status, 403);
    assert.equal((await call(viewer, 'GET', `/ceps/query/${NOTES}`)).status, 403);

    await grant('read_notes', 'Accept');
    const read = await call(viewer, 'GET', `/ceps/read/${NOTES}/${note}`);
    assert.equal(read.status, 200);
    assert.equal(read.body.title, 'mine');
    assert.deepEqual((await call(viewer, 'POST', `/ceps/query/${NOTES}`, { q: { title: 'mine' } })).body.map((r) => r._id), [note]);
    // Reading is all it gives.
    assert.equal((await call(viewer, 'POST', `/ceps/write/${NOTES}`, { title: 'theirs' })).status, 403);
    assert.equal((await call(viewer, 'PUT', `/ceps/update/${NOTES}/${note}`, { title: 'changed' })).status, 403);
    assert.equal((await call(viewer, 'DELETE', `/ceps/delete/${NOTES}/${note}`)).status, 403);
    // Another app's file records (in any spelling) and the server's tables are never reached through a grant, even one naming them.
    await grant('notes_files', 'Accept');
    assert.equal((await call(viewer, 'GET', `/ceps/query/${NOTES}.files`)).status, 403);
    assert.equal((await call(viewer, 'POST', `/ceps/write/${NOTES}.Files`, { x: 1 })).status, 403);
    assert.equal((await call(viewer, 'POST', '/ceps/write/dev.ceps.messages.gotx', { x: 1 })).status, 403);

    await grant('read_notes', 'Deny');
    assert.equal((await call(viewer, 'GET', `/ceps/read/${NOTES}/${note}`)).status, 403);
  });

  test('write_own adds records (marked as its own) and touches only those; write_all touches any', async () => {
    const theirs = (await call(notes, 'POST', `/ceps/write/${POSTS}`, { title: 'by notes' })).body._id as string;
    assert.equal((await call(viewer, 'POST', `/ceps/write/${POSTS}`, { title: 'by viewer' })).status, 403);
    await grant('add_posts', 'Accept');
    const mine = (await call(viewer, 'POST', `/ceps/write/${POSTS}`, { title: 'by viewer', _created_by_app: NOTES })).body._id as string;
    const stored = await s.services.stores.records(USER).get(USER, POSTS, mine);
    assert.equal(stored?._created_by_app, VIEWER, 'the server says who added it; the client cannot');
    assert.equal(stored?._created_by_user, USER);

    // It sees, changes and deletes its own, and nothing else (the others "do not exist" for it).
    assert.deepEqual((await call(viewer, 'GET', `/ceps/query/${POSTS}`)).body.map((r) => r._id), [mine]);
    assert.equal((await call(viewer, 'GET', `/ceps/read/${POSTS}/${theirs}`)).status, 404);
    assert.equal((await call(viewer, 'PUT', `/ceps/update/${POSTS}/${theirs}`, { title: 'taken over' })).status, 404);
    assert.equal((await call(viewer, 'PUT', `/feps/update/${POSTS}/${theirs}`, { title: 'taken over' })).status, 404);
    assert.equal((await call(viewer, 'DELETE', `/ceps/delete/${POSTS}/${theirs}`)).status, 404);
    assert.deepEqual((await call(viewer, 'PUT', `/feps/update/${POSTS}`, { q: {}, keys: { seen: true } })).body, { nModified: 1 });
    // Ids of its choosing would tell it which ids exist among the records it cannot see: the server chooses them.
    for (const [url, body] of [[`/feps/write/${POSTS}/${theirs}?upsert=true`, { title: 'taken over' }], [`/feps/write/${POSTS}/${theirs}`, { title: 'x' }],
      [`/feps/write/${POSTS}`, { _id: theirs, title: 'x' }], [`/feps/write/${POSTS}/no-such-id?upsert=true`, { title: 'x' }]] as const) {
      const res = await call(viewer, 'POST', url, body);
      assert.equal(res.status, 403, url);
      assert.match(String(res.body.message), /get their ids from the server/);
    }
    assert.equal((await call(viewer, 'PUT', `/ceps/update/${POSTS}/${mine}`, { title: 'edited' })).status, 200);
    const after = await s.services.stores.records(USER).get(USER, POSTS, mine);
    assert.deepEqual([after?.title, after?._created_by_app], ['edited', VIEWER], 'a full update keeps who added it');
    assert.deepEqual((await call(viewer, 'DELETE', `/feps/delete/${POSTS}`, { q: {} })).body, { success: true, deleted: 1 });
    const left = await s.services.stores.records(USER).get(USER, POSTS, theirs);
    assert.deepEqual([left?.title, left?.seen], ['by notes', undefined], "the notes app's own post was not touched");

    // write_all: anything in its table.
    const note = (await call(notes, 'POST', `/ceps/write/${NOTES}`, { title: 'to edit' })).body._id as string;
    assert.equal((await call(viewer, 'PUT', `/ceps/update/${NOTES}/${note}`, { title: 'x' })).status, 403);
    await grant('edit_notes', 'Accept');
    assert.equal((await call(viewer, 'PUT', `/ceps/update/${NOTES}/${note}`, { title: 'edited by viewer' })).status, 200);
    assert.equal((await call(viewer, 'GET', `/ceps/read/${NOTES}/${note}`)).body.title, 'edited by viewer');
    assert.equal((await call(viewer, 'DELETE', `/ceps/delete/${NOTES}/${note}`)).status, 200);
    // With write_all it may choose ids.
    assert.equal((await call(viewer, 'POST', `/feps/write/${NOTES}/chosen-by-viewer`, { title: 'z' })).status, 200);
    await grant('edit_notes', 'Deny');
    assert.equal((await call(viewer, 'POST', `/ceps/write/${NOTES}`, { title: 'y' })).status, 403);
  });

  test("a removed app's tables are out of every grant's reach, so nothing is added to its kept data unseen", async () => {
    await grant('read_notes', 'Accept');
    await grant('edit_notes', 'Accept');
    assert.equal((await call(viewer, 'GET', `/ceps/query/${NOTES}`)).status, 200);
    await s.services.apps.remove(USER, NOTES, { deleteData: false });
    assert.equal((await call(viewer, 'GET', `/ceps/query/${NOTES}`)).status, 403);
    const write = await call(viewer, 'POST', `/ceps/write/${NOTES}`, { title: 'unseen' });
    assert.equal(write.status, 403);
    assert.match(String(write.body.message), /no app installed here keeps it/);
  });
});
