import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { multipart } from '../helpers/multipart.js';

const APP = 'com.example.notes';
let server: TestServer;
let alice: string;
let bob: string;
let other: string;

function call(method: string, url: string, token: string | undefined, payload?: unknown, headers: Record<string, string> = {}) {
  return server.app.inject({
    method: method as 'GET', url, ...(payload === undefined ? {} : { payload: payload as object }),
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
  });
}

before(async () => {
  server = await startTestServer();
  await server.addUser('alice');
  await server.addUser('bob');
  alice = await server.appToken('alice', APP);
  bob = await server.appToken('bob', APP);
  other = await server.appToken('alice', 'com.example.other');
});
after(() => server.close());

describe('FEPS records', () => {
  test('write with an id, then conflict on a second create', async () => {
    const res = await call('POST', `/feps/write/${APP}/note-1`, alice, { a: 1 });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json()._id, 'note-1');
    const again = await call('POST', `/feps/write/${APP}/note-1`, alice, { a: 2 });
    assert.equal(again.statusCode, 409);
    const viaBody = await call('POST', `/feps/write/${APP}`, alice, { _id: 'note-2', a: 1 });
    assert.equal(viaBody.json()._id, 'note-2');
  });

  test('upsert creates, then updates', async () => {
    const c = await call('POST', `/feps/write/${APP}/up-1?upsert=true`, alice, { a: 1, b: 1 });
    assert.equal(c.statusCode, 200);
    const u = await call('POST', `/feps/write/${APP}/up-1?upsert=true`, alice, { a: 2 });
    assert.equal(u.statusCode, 200);
    assert.ok(u.json()._date_modified > c.json()._date_modified);
    const r = (await call('GET', `/ceps/read/${APP}/up-1`, alice)).json();
    assert.deepEqual([r.a, r.b], [2, 1], 'upsert merges fields unless replaceAllFields');
    await call('POST', `/feps/write/${APP}/up-1?upsert=true&replaceAllFields=true`, alice, { c: 3 });
    const r2 = (await call('GET', `/ceps/read/${APP}/up-1`, alice)).json();
    assert.deepEqual([r2.a, r2.c], [undefined, 3]);
  });

  test('partial update keeps other fields; 404 when absent', async () => {
    await call('POST', `/feps/write/${APP}/p-1`, alice, { a: 1, b: 1 });
    const u = await call('PUT', `/feps/update/${APP}/p-1`, alice, { b: 2 });
    assert.equal(u.statusCode, 200);
    const r = (await call('GET', `/ceps/read/${APP}/p-1`, alice)).json();
    assert.deepEqual([r.a, r.b], [1, 2]);
    assert.equal((await call('PUT', `/feps/update/${APP}/nope`, alice, { b: 2 })).statusCode, 404);
  });

  test('update and delete by query, all or nothing', async () => {
    const T = `${APP}.bulk`;
    for (let i = 0; i < 6; i++) await call('POST', `/ceps/write/${T}`, alice, { i, group: i % 2 ? 'odd' : 'even' });
    const u = await call('PUT', `/feps/update/${T}`, alice, { q: { group: 'odd' }, keys: { flagged: true } });
    assert.equal(u.statusCode, 200);
    assert.equal(u.json().nModified, 3);
    const flagged = (await call('GET', `/ceps/query/${T}?flagged=true`, alice)).json();
    assert.equal(flagged.length, 3, 'GET ?flagged=true matches the boolean (or the string)');
    const viaPost = (await call('POST', `/ceps/query/${T}`, alice, { q: { flagged: true } })).json();
    assert.equal(viaPost.length, 3);
    const bad = await call('PUT', `/feps/update/${T}`, alice, { q: { group: 'even' }, keys: { _evil: 1 } });
    assert.equal(bad.statusCode, 400);
    const d = await call('DELETE', `/feps/delete/${T}`, alice, { q: { group: 'even' } });
    assert.equal(d.statusCode, 200);
    assert.equal(d.json().deleted, 3);
    assert.equal((await call('GET', `/ceps/query/${T}`, alice)).json().length, 3);
    assert.equal((await call('DELETE', `/feps/delete/${T}`, alice, { q: { $where: '1' } })).statusCode, 400);
    assert.equal((await call('DELETE', `/feps/delete/${T}`, alice, {})).statusCode, 400);
  });

  test('restore keeps ids and dates', async () => {
    const res = await call('POST', `/feps/restore/${APP}`, alice, { _id: 'old-1', _date_created: 1000, _date_modified: 2000, text: 'back' });
    assert.equal(res.statusCode, 200);
    const r = (await call('GET', `/ceps/read/${APP}/old-1`, alice)).json();
    assert.deepEqual([r._date_created, r._date_modified, r.text], [1000, 2000, 'back']);
    assert.equal((await call('POST', `/feps/restore/${APP}`, alice, { text: 'no id' })).statusCode, 400);
  });

  test("bob's token never touches alice's records through FEPS", async () => {
    await call('POST', `/feps/write/${APP}/alice-only`, alice, { v: 1 });
    assert.equal((await call('PUT', `/feps/update/${APP}/alice-only`, bob, { v: 2 })).statusCode, 404);
    assert.equal((await call('DELETE', `/feps/delete/${APP}/alice-only`, bob)).statusCode, 404);
    const bulk = await call('DELETE', `/feps/delete/${APP}`, bob, { q: {} });
    assert.equal(bulk.json().deleted, 0);
    assert.equal((await call('GET', `/ceps/read/${APP}/alice-only`, alice)).json().v, 1);
    assert.equal((await call('POST', `/feps/write/${APP}/x`, other, { v: 1 })).statusCode, 403);
  });

  test('traversal ids are refused', async () => {
    for (const id of ['..', '%2e%2e', 'a%00b']) {
      const res = await call('POST', `/feps/write/${APP}/${id}`, alice, { v: 1 });
      assert.ok([400, 404].includes(res.statusCode), id);
    }
  });
});

describe("freezr's other FEPS spellings", () => {
  test('update: replaceAllFields beside _entity replaces, as freezrApiV2 sends it', async () => {
    await call('POST', `/feps/write/${APP}/rf-1`, alice, { a: 1, b: 1 });
    assert.equal((await call('PUT', `/feps/update/${APP}/rf-1`, alice, { _entity: { c: 3 }, replaceAllFields: true })).statusCode, 200);
    const r = (await call('GET', `/ceps/read/${APP}/rf-1`, alice)).json();
    assert.deepEqual([r.a, r.b, r.c], [undefined, undefined, 3]);
    // Without the flag, the same body merges.
    await call('PUT', `/feps/update/${APP}/rf-1`, alice, { _entity: { d: 4 } });
    const m = (await call('GET', `/ceps/read/${APP}/rf-1`, alice)).json();
    assert.deepEqual([m.c, m.d], [3, 4]);
  });

  test('an id of several segments, unencoded, as freezrApiV2 sends a file path', async () => {
    const id = 'dir/rec';
    assert.equal((await call('POST', `/feps/write/${APP}/${encodeURIComponent(id)}`, alice, { a: 1 })).statusCode, 200);
    const up = await call('PUT', `/feps/update/${APP}/dir/rec`, alice, { b: 2 });
    assert.equal(up.statusCode, 200, up.body);
    const r = (await call('GET', `/ceps/read/${APP}/${encodeURIComponent(id)}`, alice)).json();
    assert.deepEqual([r.a, r.b], [1, 2]);
    assert.equal((await call('PUT', `/feps/update/${APP}/dir/rec?replaceAllFields=true`, alice, { c: 3 })).statusCode, 200);
    assert.equal((await call('GET', `/ceps/read/${APP}/${encodeURIComponent(id)}`, alice)).json().a, undefined);
    // Dot segments: resolved before routing (then an ordinary id) or refused; never a way out of the table.
    assert.ok([400, 404].includes((await call('PUT', `/feps/update/${APP}/a/../b`, alice, { x: 1 })).statusCode));
    assert.ok([400, 404].includes((await call('DELETE', `/feps/delete/${APP}/a/%2e%2e/b`, alice)).statusCode));
    const control = await call('DELETE', `/feps/delete/${APP}/a/b%01c`, alice);
    assert.equal(control.statusCode, 400, 'the whole id is checked');
    assert.equal(control.json().error, 'invalid_name');
    assert.equal((await call('DELETE', `/feps/delete/${APP}/dir/rec`, other)).statusCode, 403);
    assert.equal((await call('DELETE', `/feps/delete/${APP}/dir/rec`, alice)).statusCode, 200);
    assert.equal((await call('GET', `/ceps/read/${APP}/${encodeURIComponent(id)}`, alice)).statusCode, 404);
    assert.equal((await call('DELETE', `/feps/delete/${APP}/dir/rec`, alice)).statusCode, 404);
  });

  test('/feps/read and /feps/query answer as /ceps/read and /ceps/query do', async () => {
    await call('POST', `/feps/write/${APP}/fq-1`, alice, { kind: 'fq', n: 1 });
    await call('POST', `/feps/write/${APP}/fq-2`, alice, { kind: 'fq', n: 2 });
    const read = await call('GET', `/feps/read/${APP}/fq-1`, alice);
    assert.equal(read.statusCode, 200);
    assert.equal(read.body, (await call('GET', `/ceps/read/${APP}/fq-1`, alice)).body);
    const get = await call('GET', `/feps/query/${APP}?kind=fq`, alice);
    assert.equal(get.body, (await call('GET', `/ceps/query/${APP}?kind=fq`, alice)).body);
    assert.deepEqual(get.json().map((r: { _id: string }) => r._id).sort(), ['fq-1', 'fq-2']);
    const post = await call('POST', `/feps/query/${APP}`, alice, { q: { kind: 'fq', n: { $gt: 1 } } });
    assert.deepEqual(post.json().map((r: { _id: string }) => r._id), ['fq-2']);
    // freezr names the owner user_id there: one's own id reads one's own records; another's is refused without a grant.
    assert.equal((await call('POST', `/feps/query/${APP}`, alice, { q: { kind: 'fq' }, user_id: 'alice' })).json().length, 2);
    assert.notEqual((await call('POST', `/feps/query/${APP}`, alice, { q: { kind: 'fq' }, user_id: 'bob' })).statusCode, 200);
    // Bad input as on /ceps: an unknown operator is 400, another app's table 403.
    assert.equal((await call('POST', `/feps/query/${APP}`, alice, { q: { $where: '1' } })).statusCode, 400);
    assert.equal((await call('GET', `/feps/read/${APP}/fq-1`, other)).statusCode, 403);
  });
});

describe('client-chosen ids', () => {
  test('anything but .., %2e%2e, control characters and what no backend can keep', async () => {
    for (const id of ['https://example.com/page 1', 'a/b\\c', 'naïve café', '100%', '$x', "quote'd \"id\""]) {
      const res = await call('POST', `/feps/write/${APP}/${encodeURIComponent(id)}`, alice, { id });
      assert.equal(res.statusCode, 200, `${id}: ${res.body}`);
      assert.equal(res.json()._id, id);
      assert.equal((await call('GET', `/ceps/read/${APP}/${encodeURIComponent(id)}`, alice)).json().id, id);
    }
    // Control characters: C0, DEL and C1 (U+0080–U+009F, e.g. NEL).
    for (const id of ['a..b', 'x%2E%2Ey', 'tab\there', 'nul\u0000', 'del\u007f', 'nel\u0085here', 'csi\u009b', 'é'.repeat(100), 'x'.repeat(201)]) {
      const res = await call('POST', `/feps/write/${APP}/${encodeURIComponent(id)}`, alice, { a: 1 });
      assert.equal(res.statusCode, 400, JSON.stringify(id));
      assert.equal(res.json().error, id.length > 200 ? 'bad_request' : 'invalid_name', JSON.stringify(id));
    }
  });
});

describe('an app named like a files table', () => {
  test('com.zz.files keeps ordinary records (com.zz is no app), and its owner can still export', async () => {
    const zz = await server.appToken('alice', 'com.zz.files');
    const id = 'https://example.com/page 1';
    const write = await call('POST', `/feps/write/com.zz.files/${encodeURIComponent(id)}`, zz, { a: 1 });
    assert.equal(write.statusCode, 200, write.body);
    assert.equal((await call('GET', `/ceps/read/com.zz.files/${encodeURIComponent(id)}`, zz)).json().a, 1);
    const exported = await server.app.inject({ method: 'GET', url: '/acctapi/export', headers: { cookie: await server.signIn('alice') } });
    assert.equal(exported.statusCode, 200);
    // The whole zip arrived: it ends with its end-of-central-directory record.
    assert.equal(exported.rawPayload.readUInt32LE(exported.rawPayload.length - 22), 0x06054b50);
    assert.match(exported.rawPayload.toString('latin1'), /tables\/com\.zz\.files\.jsonl/);
  });
});

describe('FEPS files', () => {
  const content = Buffer.from('0123456789abcdefghij'.repeat(100));

  async function upload(token: string, opts: object, file = content, filename = 'pic.png', type = 'image/png') {
    const { body, contentType } = multipart([
      { name: 'options', value: JSON.stringify(opts) },
      { name: 'file', value: file, filename, contentType: type },
    ]);
    return server.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: body, headers: { 'content-type': contentType, authorization: `Bearer ${token}` } });
  }

  test("a file deleted by its path, unencoded, as freezrApiV2's delete('files', path) sends it", async () => {
    assert.equal((await upload(alice, { targetFolder: 'pics', fileName: 'gone.png' })).statusCode, 200);
    const del = await call('DELETE', `/ceps/delete/${APP}.files/pics/gone.png`, alice);
    assert.equal(del.statusCode, 200, del.body);
    assert.equal((await call('GET', `/feps/userfiles/${APP}/alice/pics/gone.png`, alice)).statusCode, 404);
  });

  test('upload stores the file and its record; download streams it back with ranges', async () => {
    const res = await upload(alice, { targetFolder: 'pics', fileName: 'one.png' });
    assert.equal(res.statusCode, 200, res.body);
    const rec = res.json();
    assert.equal(rec._id, 'pics/one.png');
    assert.equal(rec._file_size, content.length);
    const listed = (await call('GET', `/ceps/query/${APP}.files`, alice)).json();
    assert.ok(listed.some((r: { _id: string }) => r._id === 'pics/one.png'));

    const url = `/feps/userfiles/${APP}/alice/pics/one.png`;
    const full = await call('GET', url, alice);
    assert.equal(full.statusCode, 200);
    assert.deepEqual(full.rawPayload, content);
    assert.equal(full.headers['content-type'], 'image/png');
    const etag = full.headers.etag as string;
    assert.ok(etag);
    assert.equal((await call('GET', url, alice, undefined, { 'if-none-match': etag })).statusCode, 304);
    const part = await call('GET', url, alice, undefined, { range: 'bytes=10-19' });
    assert.equal(part.statusCode, 206);
    assert.equal(part.body, 'abcdefghij');
    assert.equal(part.headers['content-range'], `bytes 10-19/${content.length}`);
    assert.equal((await call('GET', url, alice, undefined, { range: `bytes=${content.length + 5}-` })).statusCode, 416);
    const head = await call('HEAD', url, alice);
    assert.equal(head.statusCode, 200);
    assert.equal(head.headers['content-length'], String(content.length));
    assert.equal(head.body, '');
    const viaQuery = await call('GET', `${url}?token=${alice}`, undefined);
    assert.equal(viaQuery.statusCode, 200, 'images can carry the token in the URL');
    // freezr's other address for a file read with a Bearer token.
    const fetched = await call('GET', `/feps/fetchuserfiles/${APP}/alice/pics/one.png`, alice);
    assert.equal(fetched.statusCode, 200);
    assert.deepEqual(fetched.rawPayload, content);
    assert.equal((await call('GET', `/feps/fetchuserfiles/${APP}/alice/pics/one.png`, other)).statusCode, 403);
    assert.equal((await call('GET', `/feps/fetchuserfiles/${APP}/alice/pics/one.png`, undefined)).statusCode, 401);
  });

  test("file records carry freezr's _mime_type, _file_extension, _file_size and _UploadStatus, which apps query and cannot set", async () => {
    const up = await upload(alice, { targetFolder: 'docs', fileName: 'Report.PDF', data: { caption: 'Q1' } }, content, 'Report.PDF', 'application/pdf');
    assert.equal(up.statusCode, 200, up.body);
    const read = await call('GET', `/ceps/read/${APP}.files/${encodeURIComponent('docs/Report.PDF')}`, alice);
    assert.equal(read.statusCode, 200, read.body);
    const rec = read.json();
    assert.deepEqual([rec._mime_type, rec._file_extension, rec._file_size, rec._UploadStatus, rec.caption], ['application/pdf', 'pdf', content.length, 'complete', 'Q1']);
    const bare = (await upload(alice, { fileName: 'README' }, Buffer.from('x'), 'README', 'text/plain')).json();
    assert.deepEqual([bare._file_extension, bare._file_size], ['', 1]);
    const byPost = await call('POST', `/ceps/query/${APP}.files`, alice, { q: { _file_extension: 'pdf' } });
    assert.deepEqual((byPost.json() as Array<{ _id: string }>).map((r) => r._id), ['docs/Report.PDF']);
    const byGet = await call('GET', `/ceps/query/${APP}.files?_file_extension=pdf`, alice);
    assert.deepEqual((byGet.json() as Array<{ _id: string }>).map((r) => r._id), ['docs/Report.PDF']);
    assert.equal((await call('GET', `/ceps/query/${APP}?_secret=1`, alice)).statusCode, 400, 'other _ names stay unfilterable');
    // As freezr says of these fields: the app's data cannot overwrite them (ignored); other _ names are refused.
    const forged = await upload(alice, { fileName: 'forged.png', data: { _file_size: 1, _blob_id: 'AAAAAAAAAAAAAAAAAAAA', n: 1 } });
    assert.equal(forged.statusCode, 200, forged.body);
    assert.deepEqual([forged.json()._file_size, forged.json().n], [content.length, 1]);
    assert.notEqual(forged.json()._blob_id, 'AAAAAAAAAAAAAAAAAAAA');
    const secret = await upload(alice, { fileName: 'secret.png', data: { _secret: 1 } });
    assert.equal(secret.statusCode, 400, secret.body);
    assert.equal((await call('GET', `/ceps/read/${APP}.files/secret.png`, alice)).statusCode, 404);
  });

  test("an app merges fields of its own into its file records (freezr's updateFields on 'files'); it cannot replace them nor set _ fields", async () => {
    assert.equal((await upload(alice, { targetFolder: 'meta', fileName: 'm.png', data: { caption: 'one' } })).statusCode, 200);
    assert.equal((await upload(alice, { targetFolder: 'meta', fileName: 'n.png' })).statusCode, 200);
    const path = `/feps/update/${APP}.files/meta/m.png`; // unencoded, as freezrApiV2 sends a path
    const merged = await call('PUT', path, alice, { caption: 'two', tags: ['x'] });
    assert.equal(merged.statusCode, 200, merged.body);
    const encoded = await call('PUT', `/feps/update/${APP}.files/${encodeURIComponent('meta/m.png')}`, alice, { rating: 5 });
    assert.equal(encoded.statusCode, 200, encoded.body);
    const rec = (await call('GET', `/ceps/read/${APP}.files/${encodeURIComponent('meta/m.png')}`, alice)).json();
    assert.deepEqual([rec.caption, rec.tags, rec.rating, rec._file_size, rec._mime_type], ['two', ['x'], 5, content.length, 'image/png']);
    assert.ok(rec._date_modified > rec._date_created);
    assert.deepEqual((await call('GET', `/feps/userfiles/${APP}/alice/meta/m.png`, alice)).rawPayload, content, 'the bytes are untouched');

    const byQuery = await call('PUT', `/feps/update/${APP}.files`, alice, { q: { _file_extension: 'png', caption: { $exists: false } }, keys: { reviewed: true } });
    assert.equal(byQuery.statusCode, 200, byQuery.body);
    assert.ok(byQuery.json().nModified >= 1);
    assert.equal((await call('GET', `/ceps/read/${APP}.files/${encodeURIComponent('meta/n.png')}`, alice)).json().reviewed, true);

    for (const [method, url, body] of [
      ['PUT', `${path}?replaceAllFields=true`, { caption: 'all' }],
      ['PUT', `/ceps/update/${APP}.files/${encodeURIComponent('meta/m.png')}`, { caption: 'all' }],
      ['POST', `/feps/write/${APP}.files/made.png`, { caption: 'made' }],
    ] as const) {
      const res = await call(method, url, alice, body);
      assert.equal(res.statusCode, 400, `${method} ${url}: ${res.body}`);
      assert.equal(res.json().error, 'invalid_name');
    }
    const forged = await call('PUT', path, alice, { _file_size: 1 });
    assert.equal(forged.statusCode, 400);
    assert.equal((await call('PUT', `/feps/update/${APP}.files/meta/none.png`, alice, { a: 1 })).statusCode, 404);
    assert.equal((await call('PUT', `/feps/update/${APP}.files/..%2Fx`, alice, { a: 1 })).statusCode, 400);
    assert.equal((await call('PUT', `/feps/update/com.example.other.files/meta/m.png`, alice, { a: 1 })).statusCode, 403);
    const after = (await call('GET', `/ceps/read/${APP}.files/${encodeURIComponent('meta/m.png')}`, alice)).json();
    assert.deepEqual([after.caption, after._file_size], ['two', content.length], 'nothing refused changed the record');

    // blob_id is the app's own field in today's records; in one from before _blob_id it says where the bytes are.
    assert.equal((await call('PUT', path, alice, { blob_id: 'AAAAAAAAAAAAAAAAAAAA' })).statusCode, 200);
    assert.deepEqual((await call('GET', `/feps/userfiles/${APP}/alice/meta/m.png`, alice)).rawPayload, content);
    const blobs = server.services.stores.blobs('alice');
    await blobs.put(`alice/filedata/${APP}/oldoldoldoldoldold01`, Buffer.from('old bytes'));
    await blobs.put(`alice/filedata/${APP}/otherotherotherother`, Buffer.from('other bytes'));
    await server.services.stores.records('alice').put('alice', `${APP}.files`, { _id: 'old.txt', _date_created: 1, _date_modified: 1, blob_id: 'oldoldoldoldoldold01', size: 9 });
    for (const patch of [{ blob_id: 'otherotherotherother' }, { 'blob_id.x': 1 }]) {
      const repoint = await call('PUT', `/feps/update/${APP}.files/old.txt`, alice, patch);
      assert.equal(repoint.statusCode, 400, repoint.body);
    }
    const repointByQuery = await call('PUT', `/feps/update/${APP}.files`, alice, { q: { _id: 'old.txt' }, keys: { blob_id: 'otherotherotherother' } });
    assert.equal(repointByQuery.statusCode, 400, repointByQuery.body);
    assert.equal((await call('PUT', `/feps/update/${APP}.files/old.txt`, alice, { caption: 'kept' })).statusCode, 200);
    assert.equal((await call('GET', `/feps/userfiles/${APP}/alice/old.txt`, alice)).body, 'old bytes');
    await blobs.delete(`alice/filedata/${APP}/otherotherotherother`); // no record names them: the sweeper test counts such bytes
  });

  test('the options field is held to the JSON body rules: UTF-8, numbers a double holds, no __proto__; text of any script kept', async () => {
    const send = (options: Buffer) => {
      const { body, contentType } = multipart([{ name: 'options', value: options }, { name: 'file', value: content, filename: 'o.png', contentType: 'image/png' }]);
      return server.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: body, headers: { 'content-type': contentType, authorization: `Bearer ${alice}` } });
    };
    const refused: Array<[Buffer, RegExp]> = [
      [Buffer.concat([Buffer.from('{"fileName":"bad1.png","data":{"name":"caf'), Buffer.from([0xe9]), Buffer.from('"}}')]), /UTF-8/],
      [Buffer.from('{"fileName":"bad2.png","data":{"x":1e400}}'), /too large/],
      [Buffer.from('{"fileName":"bad3.png","data":{"__proto__":{"x":1}}}'), /__proto__/],
      [Buffer.from('{"fileName":"bad4.png",'), /options must be a JSON object/],
    ];
    for (const [options, why] of refused) {
      const res = await send(options);
      assert.equal(res.statusCode, 400, options.toString('latin1'));
      assert.match(res.json().message, why);
    }
    assert.deepEqual(((await call('POST', `/ceps/query/${APP}.files`, alice, { q: { _id: { $in: ['bad1.png', 'bad2.png', 'bad3.png', 'bad4.png'] } } })).json() as unknown[]), [], 'none stored');
    const fine = await send(Buffer.from('{"fileName":"ünï 😀.png","data":{"caption":"café 日本 😀","n":1e300}}'));
    assert.equal(fine.statusCode, 200, fine.body);
    assert.deepEqual([fine.json()._id, fine.json().caption, fine.json().n], ['ünï 😀.png', 'café 日本 😀', 1e300]);
  });

  test("an upload's data keeps every plain field as the app sent it, whatever its name", async () => {
    const data = { size: 'large', path: 'my/own/path', fileName: 'my label', content_type: 'note', sha256: 'mine', blob_id: 'x' };
    const up = await upload(alice, { targetFolder: 'own', fileName: 'c.png', data });
    assert.equal(up.statusCode, 200, up.body);
    const rec = (await call('GET', `/ceps/read/${APP}.files/${encodeURIComponent('own/c.png')}`, alice)).json();
    for (const [key, value] of Object.entries(data)) assert.equal(rec[key], value, key);
    assert.equal(rec._file_size, content.length);
    const file = await call('GET', `/feps/userfiles/${APP}/alice/own/c.png`, alice);
    assert.deepEqual(file.rawPayload, content, "the app's blob_id is its own field: the bytes are found by _blob_id");
  });

  test("getuserfiletoken gives the token for a file's address, as freezr's library asks for it", async () => {
    assert.equal((await upload(alice, { targetFolder: 'pics', fileName: 'tok.png' })).statusCode, 200);
    const res = await call('GET', `/feps/getuserfiletoken/self/${APP}/alice/pics/tok.png`, alice);
    assert.equal(res.statusCode, 200, res.body);
    const { fileToken } = res.json() as { fileToken: string };
    // The address freezr's library builds with it.
    const file = await call('GET', `/feps/userfiles/${APP}/alice/pics/tok.png?fileToken=${encodeURIComponent(fileToken)}&permission_name=self`, undefined);
    assert.equal(file.statusCode, 200, file.body);
    assert.deepEqual(file.rawPayload, content);
    assert.equal((await call('GET', `/feps/getuserfiletoken/self/${APP}/alice/pics/none.png`, alice)).statusCode, 404);
    assert.equal((await call('GET', `/feps/getuserfiletoken/self/${APP}/alice/pics/tok.png`, other)).statusCode, 403);
    assert.equal((await call('GET', `/feps/getuserfiletoken/self/${APP}/alice/pics/tok.png`, bob)).statusCode, 404);
    assert.equal((await call('GET', `/feps/getuserfiletoken/self/${APP}/alice/pics/tok.png`, undefined)).statusCode, 401);
    assert.equal((await call('GET', `/feps/getuserfiletoken/self/${APP}/alice/..%2Fx`, alice)).statusCode, 400);

    // It is that file's token, not the app's: apps keep it in records and links.
    assert.notEqual(fileToken, alice);
    assert.ok(!fileToken.includes(alice));
    assert.equal((await call('GET', `/feps/getuserfiletoken/self/${APP}/alice/pics/tok.png`, alice)).json().fileToken, fileToken, 'the same token each time');
    assert.equal((await upload(alice, { targetFolder: 'pics', fileName: 'other.png' })).statusCode, 200);
    const elsewhere = [
      `/feps/userfiles/${APP}/alice/pics/other.png?fileToken=${encodeURIComponent(fileToken)}`,
      `/feps/userfiles/${APP}/bob/pics/tok.png?fileToken=${encodeURIComponent(fileToken)}`,
      `/feps/userfiles/com.example.other/alice/pics/tok.png?fileToken=${encodeURIComponent(fileToken)}`,
      `/feps/userfiles/${APP}/alice/pics/tok.png?fileToken=${encodeURIComponent(fileToken.slice(0, -2) + 'xx')}`,
    ];
    for (const url of elsewhere) assert.equal((await call('GET', url, undefined)).statusCode, 401, url);
    for (const [method, url] of [['GET', `/ceps/query/${APP}.files`], ['GET', `/feps/fetchuserfiles/${APP}/alice/pics/tok.png`], ['DELETE', `/feps/userfiles/${APP}/alice/pics/tok.png`]] as const) {
      assert.equal((await call(method, url, fileToken)).statusCode, 401, `${method} ${url}: a file token is no app token`);
    }
    assert.equal((await call('HEAD', `/feps/userfiles/${APP}/alice/pics/tok.png?token=${encodeURIComponent(fileToken)}`, undefined)).statusCode, 200);
    // It ends with the app token it was made with.
    const shortLived = await server.appToken('alice', APP);
    const its = (await call('GET', `/feps/getuserfiletoken/self/${APP}/alice/pics/tok.png`, shortLived)).json().fileToken as string;
    const viaIts = `/feps/userfiles/${APP}/alice/pics/tok.png?fileToken=${encodeURIComponent(its)}`;
    assert.equal((await call('GET', viaIts, undefined)).statusCode, 200);
    await server.services.tokens.revoke(shortLived);
    assert.equal((await call('GET', viaIts, undefined)).statusCode, 401, 'revoking the app token ends its file tokens');
    assert.equal((await call('GET', `/feps/userfiles/${APP}/alice/pics/tok.png?fileToken=${encodeURIComponent(fileToken)}`, undefined)).statusCode, 200, "another token's stay");
  });

  test('doNotOverWrite refuses a second upload of the same name', async () => {
    assert.equal((await upload(alice, { fileName: 'keep.txt' })).statusCode, 200);
    const again = await upload(alice, { fileName: 'keep.txt', doNotOverWrite: true });
    assert.equal(again.statusCode, 409);
  });

  test('other users and apps cannot read the file', async () => {
    await upload(alice, { fileName: 'private.png' });
    assert.equal((await call('GET', `/feps/userfiles/${APP}/alice/private.png`, bob)).statusCode, 404);
    assert.equal((await call('GET', `/feps/userfiles/${APP}/alice/private.png`, other)).statusCode, 403);
    assert.equal((await call('GET', `/feps/userfiles/${APP}/alice/private.png`, undefined)).statusCode, 401);
  });

  test("a file in a folder is read and deleted through its <app>.files record, as freezr apps do", async () => {
    const up = await upload(alice, { targetFolder: 'pics/2024', fileName: 'two words.png' });
    assert.equal(up.statusCode, 200, up.body);
    const id = encodeURIComponent('pics/2024/two words.png');
    const read = await call('GET', `/ceps/read/${APP}.files/${id}`, alice);
    assert.equal(read.statusCode, 200, read.body);
    assert.equal(read.json()._id, 'pics/2024/two words.png');
    for (const bad of ['..%2Fx.png', 'pics%2F..%2F..%2Fx', 'a%2F%2Fb', '%2Fabs.png']) {
      const res = await call('GET', `/ceps/read/${APP}.files/${bad}`, alice);
      assert.equal(res.statusCode, 400, bad);
    }
    const del = await call('DELETE', `/ceps/delete/${APP}.files/${id}`, alice);
    assert.equal(del.statusCode, 200, del.body);
    assert.equal(del.json()._id, 'pics/2024/two words.png');
    assert.equal((await call('GET', `/feps/userfiles/${APP}/alice/pics/2024/two%20words.png`, alice)).statusCode, 404);
    assert.equal((await call('GET', `/ceps/read/${APP}.files/${id}`, alice)).statusCode, 404);
  });

  test('an upload naming another owner is refused, not stored as the caller\'s', async () => {
    const res = await upload(alice, { fileName: 'for-bob.png', owner_id: 'bob' });
    assert.equal(res.statusCode, 403, res.body);
    assert.equal((await call('GET', `/feps/userfiles/${APP}/alice/for-bob.png`, alice)).statusCode, 404);
  });

  test('an uploaded script is never served as one', async () => {
    const js = Buffer.from('window.ran = true;');
    const up = await upload(alice, { fileName: 'x.js' }, js, 'x.js', 'text/javascript');
    assert.equal(up.statusCode, 200, up.body);
    for (const dest of ['script', 'worker', 'sharedworker', 'serviceworker', 'audioworklet', 'paintworklet']) {
      const res = await call('GET', `/feps/userfiles/${APP}/alice/x.js`, alice, undefined, { 'sec-fetch-dest': dest });
      assert.equal(res.statusCode, 403, dest);
    }
    // Fetched as data it comes back, as bytes whatever type it was uploaded with; a list of
    // types (browsers take the last) or a spelling variant never gets a script type through.
    for (const type of ['text/javascript', 'image/png, text/javascript', 'text/plain,text/javascript', 'Text/JavaScript; charset=x', 'text/javascript,']) {
      assert.equal((await upload(alice, { fileName: 'y.js' }, js, 'y.js', type)).statusCode, 200, type);
      const res = await call('GET', `/feps/userfiles/${APP}/alice/y.js`, alice, undefined, { 'sec-fetch-dest': 'empty' });
      assert.equal(res.statusCode, 200);
      assert.equal(res.body, 'window.ran = true;');
      assert.equal(res.headers['content-type'], 'application/octet-stream', type);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.match(String(res.headers['content-disposition']), /^attachment/, type);
    }
    // A plain, safe type is kept as sent.
    assert.equal((await upload(alice, { fileName: 'z.png' }, content, 'z.png', 'Image/PNG; x=1')).statusCode, 200);
    assert.equal((await call('GET', `/feps/userfiles/${APP}/alice/z.png`, alice)).headers['content-type'], 'image/png');
  });

  test('traversal in file names and paths is refused', async () => {
    for (const opts of [{ fileName: '../escape.png' }, { targetFolder: '..', fileName: 'x.png' }, { fileName: 'a\\b.png' }, { targetFolder: '%2e%2e', fileName: 'x' },
      { fileName: 'nel\u0085.png' }, { targetFolder: 'del\u007f', fileName: 'x.png' }]) {
      const res = await upload(alice, opts);
      assert.equal(res.statusCode, 400, JSON.stringify(opts));
    }
    // Names and folders are text: nothing else is turned into one, nor quietly dropped.
    for (const opts of [{ fileName: { a: 1 } }, { fileName: 123 }, { targetFolder: ['a', '..'], fileName: 'q.txt' }, { targetFolder: 7, fileName: 'q.txt' }]) {
      const res = await upload(alice, opts);
      assert.equal(res.statusCode, 400, JSON.stringify(opts));
      assert.equal(res.json().error, 'invalid_name');
    }
    const names = (await call('GET', `/ceps/query/${APP}.files`, alice)).json().map((r: { _id: string }) => r._id);
    assert.ok(!names.some((n: string) => n === 'q.txt' || n === '123' || n.includes('object')), names.join(' '));
    for (const p of ['..%2F..%2Fetc%2Fpasswd', '%2e%2e/%2e%2e/etc/passwd', 'a/../../b']) {
      const res = await call('GET', `/feps/userfiles/${APP}/alice/${p}`, alice);
      assert.ok([400, 404].includes(res.statusCode), p);
    }
  });

  test('bad multipart and missing file are 400; upload for another app is 403', async () => {
    const noFile = multipart([{ name: 'options', value: '{}' }]);
    const r1 = await server.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: noFile.body, headers: { 'content-type': noFile.contentType, authorization: `Bearer ${alice}` } });
    assert.equal(r1.statusCode, 400);
    const r2 = await server.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: 'not multipart', headers: { 'content-type': 'text/plain', authorization: `Bearer ${alice}` } });
    assert.ok([400, 415].includes(r2.statusCode));
    const badOpts = multipart([{ name: 'options', value: '{not json' }, { name: 'file', value: 'x', filename: 'x.txt' }]);
    const r3 = await server.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: badOpts.body, headers: { 'content-type': badOpts.contentType, authorization: `Bearer ${alice}` } });
    assert.equal(r3.statusCode, 400);
    const { body, contentType } = multipart([{ name: 'file', value: 'x', filename: 'x.txt' }]);
    const r4 = await server.app.inject({ method: 'PUT', url: '/feps/upload/com.example.other', payload: body, headers: { 'content-type': contentType, authorization: `Bearer ${alice}` } });
    assert.equal(r4.statusCode, 403);
  });

  test('an upload over the size limit is 413 and leaves nothing', async () => {
    const small = await startTestServer({ config: { maxUploadBytes: 1000 } });
    try {
      await small.addUser('alice');
      const token = await small.appToken('alice', APP);
      const { body, contentType } = multipart([{ name: 'options', value: '{"fileName":"big.bin"}' }, { name: 'file', value: Buffer.alloc(5000, 1), filename: 'big.bin' }]);
      const res = await small.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: body, headers: { 'content-type': contentType, authorization: `Bearer ${token}` } });
      assert.equal(res.statusCode, 413);
      const get = await small.app.inject({ method: 'GET', url: `/feps/userfiles/${APP}/alice/big.bin`, headers: { authorization: `Bearer ${token}` } });
      assert.equal(get.statusCode, 404);
      const recs = await small.app.inject({ method: 'GET', url: `/ceps/query/${APP}.files`, headers: { authorization: `Bearer ${token}` } });
      assert.deepEqual(recs.json(), []);
    } finally {
      await small.close();
    }
  });

  test('delete removes the file and its record', async () => {
    await upload(alice, { fileName: 'gone.png' });
    const res = await call('DELETE', `/feps/userfiles/${APP}/alice/gone.png`, alice);
    assert.equal(res.statusCode, 200);
    assert.equal((await call('GET', `/feps/userfiles/${APP}/alice/gone.png`, alice)).statusCode, 404);
    assert.equal((await call('GET', `/ceps/read/${APP}.files/gone.png`, alice)).statusCode, 404);
  });
});

describe('unreferenced bytes', () => {
  test('bytes no file record points at are swept once old; referenced and recent bytes stay', async () => {
    const blobs = server.services.stores.blobs('alice');
    const { body, contentType } = multipart([{ name: 'options', value: '{"fileName":"kept.txt"}' }, { name: 'file', value: 'kept', filename: 'kept.txt' }]);
    const up = await server.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: body, headers: { 'content-type': contentType, authorization: `Bearer ${alice}` } });
    const keptKey = `alice/filedata/${APP}/${up.json()._blob_id}`;
    await blobs.put(`alice/filedata/${APP}/orphanorphanorphan1`, Buffer.from('x'));
    await blobs.put('alice/staging/old-one', Buffer.from('y'));
    // A file record from before `_blob_id`: its bytes are named by `blob_id`.
    await blobs.put(`alice/filedata/${APP}/legacylegacylegacy1`, Buffer.from('old'));
    await server.services.stores.records('alice').put('alice', `${APP}.files`, { _id: 'legacy.txt', _date_created: 1, _date_modified: 1, blob_id: 'legacylegacylegacy1', size: 3 });
    assert.equal(await server.services.files.sweepUnreferenced('alice', 60_000), 0, 'everything is younger than a minute');
    assert.equal(await server.services.files.sweepUnreferenced('alice', -1), 2);
    assert.equal(await blobs.head(`alice/filedata/${APP}/orphanorphanorphan1`), null);
    assert.ok(await blobs.head(keptKey), 'bytes a record points at are kept');
    assert.equal((await call('GET', `/feps/userfiles/${APP}/alice/legacy.txt`, alice)).body, 'old', 'and those an older record names');
    assert.equal((await call('GET', `/feps/userfiles/${APP}/alice/kept.txt`, alice)).body, 'kept');
  });

  test('an overwrite keeps the old bytes until the new record is in, then drops them', async () => {
    const send = async (text: string) => {
      const { body, contentType } = multipart([{ name: 'options', value: '{"fileName":"v.txt"}' }, { name: 'file', value: text, filename: 'v.txt' }]);
      return (await server.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: body, headers: { 'content-type': contentType, authorization: `Bearer ${alice}` } })).json();
    };
    const v1 = await send('one');
    const v2 = await send('two');
    assert.notEqual(v1._blob_id, v2._blob_id);
    assert.equal((await call('GET', `/feps/userfiles/${APP}/alice/v.txt`, alice)).body, 'two');
    assert.equal(await server.services.stores.blobs('alice').head(`alice/filedata/${APP}/${v1._blob_id}`), null);
  });
});
