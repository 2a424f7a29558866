import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { LookupAddress } from 'node:dns';
import { checkNoOverlap, checkOwnerChosenStore, isPublicAddress, publicAddressesOnly, type ResolveAll } from './storage-policy.js';

const creds = 'accessKeyId=k&secretAccessKey=s';

test('public addresses pass; loopback, private, link-local and IPv6 forms that carry them do not', () => {
  for (const a of ['1.1.1.1', '8.8.8.8', '52.216.1.1', '2606:4700:4700::1111', '::ffff:1.1.1.1']) assert.equal(isPublicAddress(a), true, a);
  for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1',
    '::1', '::', '::ffff:127.0.0.1', '::ffff:7f00:1', '::7f00:1', '64:ff9b::a00:1', '2002:a00:1::', 'fe80::1', 'fd00::1', 'fec0::1', 'ff02::1', 'nonsense']) {
    assert.equal(isPublicAddress(a), false, a);
  }
});

test("an owner's store: a public IPv4 address is allowed; names that do not resolve and private ones are refused alike", async () => {
  await checkOwnerChosenStore('postgres://u:p@8.8.8.8/db', false);
  await checkOwnerChosenStore(`s3://bkt?endpoint=${encodeURIComponent('https://52.216.1.1')}&${creds}`, false);
  const refusals: string[] = [];
  for (const url of ['postgres://u:p@localhost/db', 'postgres://u:p@no-such-host.invalid/db']) {
    await assert.rejects(checkOwnerChosenStore(url, false), (e: Error) => (refusals.push(e.message.replace(/"[^"]*"/, 'NAME')), true));
  }
  assert.equal(refusals[0], refusals[1], 'one wording for both');
  // Never a socket on the host, even where private addresses are allowed (pg reads a host with / as a socket folder).
  for (const allow of [false, true]) {
    await assert.rejects(checkOwnerChosenStore('postgres://u:p@%2Ftmp%2Fsock:5432/db', allow), /not a local socket/, String(allow));
  }
  await assert.rejects(checkOwnerChosenStore(`s3://bkt?endpoint=${encodeURIComponent('https://52.216.1.1/other')}&${creds}`, false), /without a path/);
  // Virtual-host addressing would reach <bucket>.<host>, which is not checked.
  await assert.rejects(checkOwnerChosenStore(`s3://bkt?endpoint=${encodeURIComponent('https://52.216.1.1')}&forcePathStyle=false&${creds}`, false), /addressed by path/);
});

test("the connect-time rule for owners' stores: every address of the name must be public, in the shape net asks for", async () => {
  // What a name answers is the resolver's to say; these stand in for names under an owner's control.
  const answers: Record<string, LookupAddress[]> = {
    'public.test': [{ address: '52.216.1.1', family: 4 }, { address: '2606:4700:4700::1111', family: 6 }],
    'rebound.test': [{ address: '52.216.1.1', family: 4 }, { address: '169.254.169.254', family: 4 }],
    'mapped.test': [{ address: '::ffff:127.0.0.1', family: 6 }],
    'v6only.test': [{ address: '2606:4700:4700::1111', family: 6 }],
  };
  const resolver: ResolveAll = (name, cb) => (answers[name] ? cb(null, answers[name]!) : cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' }), []));
  const lookup = publicAddressesOnly(resolver);
  const ask = (name: string, options: object) => new Promise<{ error: NodeJS.ErrnoException | null; address: unknown; family?: number }>((resolve) =>
    lookup(name, options, (error, address, family) => resolve({ error, address, family })));

  assert.deepEqual(await ask('public.test', {}), { error: null, address: '52.216.1.1', family: 4 });
  assert.deepEqual(await ask('public.test', { all: true }), { error: null, address: answers['public.test'], family: undefined });
  assert.deepEqual(await ask('public.test', { family: 6 }), { error: null, address: '2606:4700:4700::1111', family: 6 });
  assert.deepEqual(await ask('public.test', { family: 'IPv6', all: true }), { error: null, address: [answers['public.test']![1]], family: undefined });
  for (const name of ['rebound.test', 'mapped.test']) {
    const { error } = await ask(name, { all: true });
    assert.equal(error?.code, 'ENOTPUBLIC', name);
    assert.equal(error?.message, `"${name}" is not a public address this server can reach: owners may use stores on the internet only (FREEHOLD_OWNER_STORAGE_PRIVATE)`);
  }
  assert.equal((await ask('v6only.test', { family: 4 })).error?.code, 'ENOTPUBLIC', 'no address of the family asked for');
  assert.equal((await ask('nowhere.test', {})).error?.code, 'ENOTFOUND', "the resolver's own error is passed on");
  // The system resolver, as servers use it: localhost answers loopback.
  const { error } = await new Promise<{ error: NodeJS.ErrnoException | null }>((resolve) => publicAddressesOnly()('localhost', { all: true }, (e) => resolve({ error: e })));
  assert.equal(error?.code, 'ENOTPUBLIC');
});

test('overlap: one S3 server under two spellings, AWS with and without an endpoint, and folders through a symbolic link', async () => {
  const backups = { url: `s3://bkp?endpoint=${encodeURIComponent('http://127.0.0.1:4410')}`, what: 'the backup store', sameRootShared: false };
  await assert.rejects(checkNoOverlap(`s3://bkp/backups?endpoint=${encodeURIComponent('http://localhost:4410')}`, [backups]), /overlaps the backup store/);
  await assert.rejects(checkNoOverlap(`s3://bkp/x?endpoint=${encodeURIComponent('http://[::ffff:127.0.0.1]:4410')}`, [backups]), /overlaps the backup store/);
  await checkNoOverlap(`s3://bkp/backups?endpoint=${encodeURIComponent('http://127.0.0.1:4411')}`, [backups]); // another server
  await checkNoOverlap(`s3://other?endpoint=${encodeURIComponent('http://localhost:4410')}`, [backups]); // another bucket
  // This machine under any address: unspecified, another loopback address.
  for (const host of ['0.0.0.0', '[::]', '127.0.0.2']) {
    await assert.rejects(checkNoOverlap(`s3://bkp/backups?endpoint=${encodeURIComponent(`http://${host}:4410`)}`, [backups]), /overlaps the backup store/, host);
  }
  // An endpoint's path is a bucket to a plain S3 server: s3://alice on …/bkp writes into bucket bkp.
  await assert.rejects(checkNoOverlap(`s3://alice?endpoint=${encodeURIComponent('http://127.0.0.1:4410/bkp')}`, [backups]), /overlaps the backup store/);
  const aws = { url: 's3://shared?region=eu-west-1', what: "the host's file store", sameRootShared: true };
  await assert.rejects(checkNoOverlap(`s3://shared/alice?endpoint=${encodeURIComponent('https://s3.eu-west-1.amazonaws.com')}`, [aws]), /overlaps the host's file store/);

  const dir = mkdtempSync(path.join(tmpdir(), 'freehold-policy-'));
  try {
    mkdirSync(path.join(dir, 'backups'));
    symlinkSync(path.join(dir, 'backups'), path.join(dir, 'link'));
    const fsBackups = { url: `fs:${path.join(dir, 'backups')}`, what: 'the backup store', sameRootShared: false };
    await assert.rejects(checkNoOverlap(`fs:${path.join(dir, 'link', 'mine')}`, [fsBackups]), /overlaps the backup store/);
    await assert.rejects(checkNoOverlap(`fs:${path.join(dir, 'backups', '..', 'backups', 'x')}`, [fsBackups]), /overlaps the backup store/);
    await checkNoOverlap(`fs:${path.join(dir, 'elsewhere')}`, [fsBackups]);
    // The store opens the whole rest as its folder, `?` and all: so is it checked.
    await assert.rejects(checkNoOverlap(`fs:${path.join(dir, 'zz')}?/../backups/x`, [fsBackups]), /overlaps the backup store/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
