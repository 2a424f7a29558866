import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { until } from '../helpers/until.js';
import { postgresSuite } from '../helpers/postgres.js';
import { SqliteRecordStore } from '../../src/storage/sqlite/record-store.js';

const root = path.resolve(import.meta.dirname, '..', '..');
const main = path.join(root, 'src', 'cli', 'main.ts');
let dataDir: string;

function cli(args: string[], input?: string, env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', main, ...args], {
    cwd: root, input, encoding: 'utf8', env: { ...process.env, FREEHOLD_DATA: dataDir, FREEHOLD_CONFIG: '', FREEHOLD_LOG_LEVEL: 'silent', ...env },
  });
}

before(() => { dataDir = mkdtempSync(path.join(tmpdir(), 'freehold-cli-')); });
after(() => rmSync(dataDir, { recursive: true, force: true }));

test('user add reads the password from stdin; refuses duplicates and weak passwords', () => {
  const ok = cli(['user', 'add', 'alice', '--password-stdin', '--admin'], 'a long passphrase\n');
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /created user alice \(admin\)/);
  const dup = cli(['user', 'add', 'alice', '--password-stdin'], 'a long passphrase\n');
  assert.notEqual(dup.status, 0);
  assert.match(dup.stderr, /already exists/);
  const weak = cli(['user', 'add', 'bob', '--password-stdin'], 'short\n');
  assert.notEqual(weak.status, 0);
  const noFlag = cli(['user', 'add', 'bob'], 'a long passphrase\n');
  assert.notEqual(noFlag.status, 0);
  const list = cli(['user', 'list']);
  assert.match(list.stdout, /^alice\tadmin$/m);
  // Commands naming someone who is not there say so and fail, rather than print nothing.
  for (const args of [['app', 'list', '--user', 'nobody'], ['backup', 'list', '--user', 'nobody'], ['user', 'passwd', 'nobody', '--password-stdin']]) {
    const r = cli(args, 'a long passphrase\n');
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.stderr, /^freehold: no user nobody$/m, args.join(' '));
  }
  const noStdin = cli(['user', 'passwd', 'alice'], 'a long passphrase\n');
  assert.notEqual(noStdin.status, 0);
  assert.match(noStdin.stderr, /pass --password-stdin/);
  assert.match(cli(['--version']).stdout, /^\d+\.\d+\.\d+\n$/);
});

test('migrate says what is missing or contradictory in its flags, and changes nothing', () => {
  const none = cli(['migrate', '--user', 'alice']);
  assert.notEqual(none.status, 0);
  assert.match(none.stderr, /say where to move: --records <url> and\/or --blobs <url>/);
  for (const [args, named] of [[['--confirm', '--abort'], '--confirm and --abort'], [['--confirm', '--records', 'sqlite:x.db'], '--records and --confirm'],
    [['--abort', '--blobs', 'fs:x'], '--blobs and --abort']] as const) {
    const both = cli(['migrate', '--user', 'alice', ...args]);
    assert.notEqual(both.status, 0, args.join(' '));
    assert.equal(both.stderr, `freehold: ${named} cannot go together: give one of a target (--records and/or --blobs), --confirm or --abort\n`);
  }
  assert.match(cli(['user', 'list']).stdout, /^alice\tadmin$/m);
});

test('app install from a folder, list, app-password, remove; the data it kept listed and deleted', async () => {
  const install = cli(['app', 'install', path.join(root, 'examples', 'notes'), '--user', 'alice']);
  assert.equal(install.status, 0, install.stderr);
  assert.match(install.stdout, /installed com\.freehold\.notes/);
  assert.doesNotMatch(install.stdout, /waiting for/, 'the notes example asks for no permission');
  assert.match(cli(['app', 'list', '--user', 'alice']).stdout, /com\.freehold\.notes/);
  const pw = cli(['app-password', 'alice', 'com.freehold.notes']);
  assert.equal(pw.status, 0, pw.stderr);
  assert.match(pw.stdout.trim(), /^[A-Za-z0-9_-]{32,}$/);
  const bad = cli(['app', 'install', path.join(root, 'README.md'), '--user', 'alice']);
  assert.notEqual(bad.status, 0);
  const missing = cli(['app', 'install', '/no/such/app', '--user', 'alice']);
  assert.notEqual(missing.status, 0);
  assert.equal(missing.stderr, 'freehold: no such file or folder: /no/such/app\n');
  // A refused package lists its problems, one per line.
  const badManifest = mkdtempSync(path.join(tmpdir(), 'freehold-badapp-'));
  try {
    writeFileSync(path.join(badManifest, 'index.html'), '<p>x</p>');
    writeFileSync(path.join(badManifest, 'manifest.json'), JSON.stringify({
      identifier: 'com.example.badidx', display_name: 'Bad', version: '1', pages: { index: { page_title: 'x', html_file: 'index.html' } },
      app_tables: { t: { indexes: [["it's"], 'a..b'] } },
    }));
    // An app asking for permissions is told to wait for the owner.
    const asks = mkdtempSync(path.join(tmpdir(), 'freehold-asks-'));
    writeFileSync(path.join(asks, 'index.html'), '<p>x</p>');
    writeFileSync(path.join(asks, 'manifest.json'), JSON.stringify({
      identifier: 'com.example.asks', version: '1', pages: { index: { html_file: 'index.html' } },
      permissions: [{ name: 'read_notes', type: 'read_all', table_id: 'com.freehold.notes' }],
    }));
    const asked = cli(['app', 'install', asks, '--user', 'alice']);
    assert.equal(asked.status, 0, asked.stderr);
    assert.match(asked.stdout, /^installed com\.example\.asks 1 for alice$/m);
    assert.match(asked.stdout, /^waiting for alice's decision \(home page, "Permissions apps ask for"\): read_notes$/m);
    // Allowed, then an update that changes what it asks for: said to be updated, and the grant lapsed.
    assert.equal(cli(['app', 'install', asks, '--user', 'alice']).status, 0);
    const db = new SqliteRecordStore(path.join(dataDir, 'freehold.db'));
    await db.init();
    const grant = { _id: 'com.example.asks/read_notes', name: 'read_notes', requestor_app: 'com.example.asks', granted: true, scope: 'v0', _date_created: 1, _date_modified: 1 };
    await db.put('alice', 'system.permissions', grant); // allowed for what an earlier version asked
    await db.close();
    const changed = cli(['app', 'install', asks, '--user', 'alice']);
    assert.match(changed.stdout, /^updated com\.example\.asks 1 for alice$/m);
    assert.match(changed.stdout, /^allowed before, changed by this version, off until allowed again: read_notes$/m);
    rmSync(asks, { recursive: true, force: true });
    assert.equal(cli(['app', 'remove', 'com.example.asks', '--user', 'alice', '--delete-data']).status, 0);
    const refused = cli(['app', 'install', badManifest, '--user', 'alice']);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /^freehold: App manifest is invalid\n {2}- app_tables\.t\.indexes\[0\]\[0\]: is not a field path.*"it's"\n {2}- app_tables\.t\.indexes\[1\]: .*"a\.\.b"\n$/);
  } finally {
    rmSync(badManifest, { recursive: true, force: true });
  }
  // A note the app wrote, straight into the store the CLI uses.
  const store = new SqliteRecordStore(path.join(dataDir, 'freehold.db'));
  await store.init();
  await store.put('alice', 'com.freehold.notes', { _id: 'n1', _date_created: 1, _date_modified: 1, title: 'eggs' });
  await store.close();
  const rm = cli(['app', 'remove', 'com.freehold.notes', '--user', 'alice']);
  assert.equal(rm.status, 0, rm.stderr);
  assert.doesNotMatch(cli(['app', 'list', '--user', 'alice']).stdout, /com\.freehold\.notes/);
  assert.match(cli(['app', 'kept', '--user', 'alice']).stdout, /^com\.freehold\.notes\t1 record in 1 table$/m);
  const del = cli(['app', 'delete-data', 'com.freehold.notes', '--user', 'alice']);
  assert.equal(del.status, 0, del.stderr);
  assert.match(del.stdout, /deleted 1 record in 1 table of com\.freehold\.notes/);
  assert.equal(cli(['app', 'kept', '--user', 'alice']).stdout, '');
  const again = cli(['app', 'delete-data', 'com.freehold.notes', '--user', 'alice']);
  assert.notEqual(again.status, 0);
  assert.match(again.stderr, /No data kept for com\.freehold\.notes/);
});

// `freehold` alone serves too (serve is the default command); both skip building the full command line.
for (const args of [['serve'], []]) test(`${['freehold', ...args].join(' ')} prints the URL and a one-time setup link when there is no admin`, async () => {
  const fresh = mkdtempSync(path.join(tmpdir(), 'freehold-serve-'));
  const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], {
    cwd: root, env: { ...process.env, FREEHOLD_DATA: fresh, FREEHOLD_CONFIG: '', PORT: '0', FREEHOLD_LOG_LEVEL: 'silent' },
  });
  try {
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no setup link printed: ' + out)), 30_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (/setup\?token=\S+/.test(out)) { clearTimeout(timer); resolve(); }
      });
      child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
    });
    assert.match(out, /freehold is running at http:\/\/localhost:\d+/);
    assert.match(out, /setup\?token=[A-Za-z0-9_-]{20,}/);
  } finally {
    child.kill('SIGTERM');
    rmSync(fresh, { recursive: true, force: true });
  }
});

test("backup: a removed user's backups are listed as an earlier account's, and restored to the new one only with --earlier-account", () => {
  const env = { FREEHOLD_BACKUP_BLOBS: `fs:${path.join(dataDir, 'backups')}`, FREEHOLD_BACKUP_INTERVAL_HOURS: '0' };
  assert.equal(cli(['user', 'add', 'carl', '--password-stdin'], 'a long passphrase\n', env).status, 0);
  const run = cli(['backup', 'run', '--user', 'carl'], undefined, env);
  assert.equal(run.status, 0, run.stderr);
  const name = /^carl\t(\S+)\t/m.exec(run.stdout)![1]!;
  assert.equal(cli(['user', 'remove', 'carl', '--yes'], undefined, env).status, 0);
  assert.equal(cli(['user', 'add', 'carl', '--password-stdin'], 'another long passphrase\n', env).status, 0);
  assert.match(cli(['backup', 'list', '--user', 'carl'], undefined, env).stdout, new RegExp(`^${name}\\t\\S+\\t\\d+ bytes\\tearlier account of this name$`, 'm'));
  const newest = cli(['backup', 'restore', '--user', 'carl'], undefined, env);
  assert.notEqual(newest.status, 0);
  assert.match(newest.stderr, /No backups of carl \(1 of an earlier account named carl are kept/);
  const named = cli(['backup', 'restore', '--user', 'carl', '--name', name], undefined, env);
  assert.notEqual(named.status, 0);
  assert.match(named.stderr, /taken before the account carl was made.*--earlier-account/);
  const allowed = cli(['backup', 'restore', '--user', 'carl', '--name', name, '--earlier-account'], undefined, env);
  assert.equal(allowed.status, 0, allowed.stderr);
  assert.match(allowed.stdout, new RegExp(`^restored carl from ${name}:`, 'm'));
});

test('serve with anything after it goes through the full command line: --help prints help, an unknown option fails', () => {
  const help = cli(['serve', '--help']);
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /Usage: freehold serve/);
  const bad = cli(['serve', '--no-such-option']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /unknown option/);
});

/** The port `freehold serve` says it is running at. */
function servingPort(child: ChildProcessWithoutNullStreams): Promise<number> {
  let out = '';
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no URL printed: ' + out)), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /running at http:\/\/localhost:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
  });
}

test('app install beside a running server prints the address that server listens on, not the CLI environment\'s default', { timeout: 90_000 }, async () => {
  const fresh = mkdtempSync(path.join(tmpdir(), 'freehold-address-'));
  // The CLI is run without the server's PORT, as from another shell.
  const { PORT: _port, FREEHOLD_PUBLIC_URL: _url, ...rest } = process.env;
  const env = { ...rest, FREEHOLD_DATA: fresh, FREEHOLD_CONFIG: '', FREEHOLD_LOG_LEVEL: 'silent' };
  const install = () => spawnSync(process.execPath, ['--import', 'tsx', main, 'app', 'install', path.join(root, 'examples', 'notes'), '--user', 'ann'], { cwd: root, env, encoding: 'utf8' });
  const serve = () => spawn(process.execPath, ['--import', 'tsx', main, 'serve'], { cwd: root, env: { ...env, PORT: '0' } });
  let child = serve();
  try {
    const added = spawnSync(process.execPath, ['--import', 'tsx', main, 'user', 'add', 'ann', '--password-stdin'], { cwd: root, env, input: 'a long passphrase\n', encoding: 'utf8' });
    assert.equal(added.status, 0, added.stderr);
    const port = await servingPort(child);
    const beside = install();
    assert.equal(beside.status, 0, beside.stderr);
    assert.match(beside.stdout, new RegExp(`^open it at http://localhost:${port}/apps/com\\.freehold\\.notes$`, 'm'));
    // Stopped: the record of its address goes with it.
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    assert.equal(existsSync(path.join(fresh, 'serving.json')), false);
    const alone = install();
    assert.equal(alone.status, 0, alone.stderr);
    assert.match(alone.stdout, /^open it at http:\/\/localhost:3000\/apps\/com\.freehold\.notes once the server runs \(freehold serve\)$/m);
    // Killed: the record it leaves names a process that no longer runs, and is not believed.
    child = serve();
    await servingPort(child);
    const killed = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await killed;
    assert.equal(existsSync(path.join(fresh, 'serving.json')), true, 'a killed server leaves its record');
    assert.match(install().stdout, /once the server runs/);
  } finally {
    child.kill('SIGKILL');
    rmSync(fresh, { recursive: true, force: true });
  }
});

test('freehold serve stops on SIGTERM even while a request is stalled, after its grace period', async () => {
  const fresh = mkdtempSync(path.join(tmpdir(), 'freehold-stop-'));
  const child = spawn(process.execPath, ['--import', 'tsx', main, 'serve'], {
    cwd: root,
    env: {
      ...process.env, FREEHOLD_DATA: fresh, FREEHOLD_CONFIG: '', PORT: '0', FREEHOLD_LOG_LEVEL: 'silent',
      // Only the grace period can end the stalled request here.
      FREEHOLD_BODY_IDLE_TIMEOUT_MS: '0', FREEHOLD_STOP_GRACE_MS: '500',
    },
  });
  const socket = new net.Socket();
  try {
    const port = await servingPort(child);
    let socketClosed = false;
    socket.on('close', () => (socketClosed = true));
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', resolve));
    socket.write('POST /acctapi/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"user_id":');
    await sleep(300); // let the server take the request in before it is asked to stop
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const code = await Promise.race([exited, sleep(20_000).then(() => 'still running' as const)]);
    assert.equal(code, 0, 'serve exits cleanly once the grace period has cut the stalled request');
    await until('the stalled connection is seen cut', () => socketClosed, 10_000);
  } finally {
    socket.destroy();
    child.kill('SIGKILL');
    rmSync(fresh, { recursive: true, force: true });
  }
});

postgresSuite('serve stops while a store is stuck', 'fhstop', (scratch) => {
  test('freehold serve exits within its stop deadline even when a database statement never ends', { timeout: 60_000 }, async () => {
    const fresh = mkdtempSync(path.join(tmpdir(), 'freehold-stuck-'));
    const schemaUrl = scratch.schemaUrl();
    const schema = new URL(schemaUrl).searchParams.get('schema')!;
    const child = spawn(process.execPath, ['--import', 'tsx', main, 'serve'], {
      cwd: root,
      env: { ...process.env, FREEHOLD_DATA: fresh, FREEHOLD_CONFIG: '', PORT: '0', FREEHOLD_LOG_LEVEL: 'silent', FREEHOLD_RECORDS: schemaUrl, FREEHOLD_STOP_GRACE_MS: '300' },
    });
    const locker = await scratch.admin.connect();
    try {
      let err = '';
      child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      const port = await servingPort(child);
      // Every statement on the records table now waits for this transaction, which never ends while the server stops.
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE "${schema}".records IN ACCESS EXCLUSIVE MODE`);
      const stuck = fetch(`http://127.0.0.1:${port}/acctapi/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user_id: 'someone', password: 'whatever it is' }) }).catch(() => null);
      await sleep(300);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      const code = await Promise.race([exited, sleep(30_000).then(() => 'still running' as const)]);
      assert.equal(code, 1, 'exits, saying the stores did not close');
      assert.match(err, /did not close within 5600 ms/);
      await stuck;
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      locker.release();
      child.kill('SIGKILL');
      rmSync(fresh, { recursive: true, force: true });
    }
  });
});

test('Ctrl-C during export leaves no partial archive; during import it says how to finish; a rerun does', { timeout: 120_000 }, async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'freehold-interrupt-'));
  const env = { ...process.env, FREEHOLD_DATA: dataDir, FREEHOLD_CONFIG: '', FREEHOLD_LOG_LEVEL: 'silent' };
  const out = path.join(dataDir, 'alice.zip');
  try {
    const { loadConfig } = await import('../../src/config.js');
    const { createServices } = await import('../../src/core/services.js');
    const { createLogger } = await import('../../src/logger.js');
    const seed = await createServices(loadConfig(env), createLogger('silent'));
    await seed.accounts.create('alice', 'a long passphrase', false);
    await seed.accounts.create('bea', 'a long passphrase', false);
    const now = Date.now();
    for (let i = 0; i < 60_000; i += 5_000) {
      await seed.stores.records('alice').batch('alice', Array.from({ length: 5_000 }, (_, j) => ({
        kind: 'put' as const, table: 'com.example.notes', record: { _id: `r${String(i + j).padStart(6, '0')}`, _date_created: now, _date_modified: now, s: 'x'.repeat(300) },
      })));
    }
    await seed.close();

    /** Runs the CLI, sends SIGINT at its first progress line, and returns its exit status and output. */
    const interrupted = async (args: string[]) => {
      const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], { cwd: root, env });
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (/entries/.test(err) && !child.killed) child.kill('SIGINT');
      });
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      return { code, err };
    };

    const exp = await interrupted(['export', '--user', 'alice', '--out', out]);
    assert.equal(exp.code, 130, exp.err);
    assert.match(exp.err, /export of alice interrupted; nothing was written/);
    assert.equal(existsSync(`${out}.partial`), false, 'no partial archive left');
    assert.equal(existsSync(out), false);

    const runSync = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', main, ...args], { cwd: root, env, encoding: 'utf8' });
    assert.equal(runSync(['export', '--user', 'alice', '--out', out]).status, 0);
    const imp = await interrupted(['import', out, '--user', 'bea']);
    if (imp.code === 130) assert.match(imp.err, /import into bea interrupted\. What was written so far stays; run the same command again/);
    else assert.equal(imp.code, 0, `finished before the signal: ${imp.err}`);
    const rerun = runSync(['import', out, '--user', 'bea']);
    assert.equal(rerun.status, 0, rerun.stderr);
    assert.match(rerun.stdout, /imported into bea: 60000 records/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a flat-file root in use by freehold serve is refused to a second process, and free again once serve stops or dies', { timeout: 120_000 }, async () => {
  const fresh = mkdtempSync(path.join(tmpdir(), 'freehold-flatlock-'));
  const records = path.join(fresh, 'records');
  const env = { ...process.env, FREEHOLD_DATA: fresh, FREEHOLD_RECORDS: `flatfile:${records}`, FREEHOLD_CONFIG: '', PORT: '0', FREEHOLD_LOG_LEVEL: 'silent' };
  const runSync = (args: string[], input?: string) => spawnSync(process.execPath, ['--import', 'tsx', main, ...args], { cwd: root, env, input, encoding: 'utf8' });
  const serve = () => spawn(process.execPath, ['--import', 'tsx', main, 'serve'], { cwd: root, env });
  let child = serve();
  try {
    await servingPort(child);
    const refused = runSync(['user', 'add', 'alice', '--password-stdin'], 'a long passphrase\n');
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, new RegExp(`in use by another freehold process ${child.pid}\\b.*serve`));
    assert.match(refused.stderr, /_lock\.json/, 'says which file to remove if that process is gone');
    assert.equal(existsSync(path.join(records, 'alice')), false, 'nothing written');

    const stopped = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await stopped;
    assert.equal(existsSync(path.join(records, '_lock.json')), false, 'a clean stop gives the root back');
    const added = runSync(['user', 'add', 'alice', '--password-stdin'], 'a long passphrase\n');
    assert.equal(added.status, 0, added.stderr);

    child = serve();
    await servingPort(child);
    const killed = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await killed;
    assert.equal(existsSync(path.join(records, '_lock.json')), true, 'a killed server leaves its lock');
    const afterKill = runSync(['user', 'add', 'bea', '--password-stdin'], 'a long passphrase\n');
    assert.equal(afterKill.status, 0, `a dead holder's lock is taken over: ${afterKill.stderr}`);
    assert.match(runSync(['user', 'list']).stdout, /^bea$/m);
  } finally {
    child.kill('SIGKILL');
    rmSync(fresh, { recursive: true, force: true });
  }
});

test('serve says at start which owners a move left read-only, and how to finish or give it up', { timeout: 90_000 }, async () => {
  const fresh = mkdtempSync(path.join(tmpdir(), 'freehold-moving-'));
  const env = { ...process.env, FREEHOLD_DATA: fresh, FREEHOLD_CONFIG: '', FREEHOLD_LOG_LEVEL: 'silent', PORT: '0' };
  try {
    assert.equal(spawnSync(process.execPath, ['--import', 'tsx', main, 'user', 'add', 'mo', '--password-stdin'], { cwd: root, env, input: 'a long passphrase\n', encoding: 'utf8' }).status, 0);
    // What a move killed after its freeze leaves in the host store.
    const host = new SqliteRecordStore(path.join(fresh, 'freehold.db'));
    await host.init();
    const here = { records: `sqlite:${path.join(fresh, 'freehold.db')}`, blobs: `fs:${path.join(fresh, 'files')}` };
    await host.put('_system', 'system.storage', { _id: 'mo', _date_created: 1, _date_modified: 1, ...here, state: 'migrating', target: { records: `sqlite:${path.join(fresh, 'mo.db')}`, blobs: here.blobs } });
    await host.close();
    const child = spawn(process.execPath, ['--import', 'tsx', main, 'serve'], { cwd: root, env });
    let out = '';
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => { out += d.toString(); if (/give it up/.test(out)) resolve(); });
        child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
      });
    } finally {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    }
    assert.match(out, /^mo's data is read-only: a move to other storage is under way or was interrupted/m);
    assert.match(out, /finish it: freehold migrate --user mo {3}or give it up: freehold migrate --user mo --abort$/m);
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
});
