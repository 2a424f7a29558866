import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { LineWriter } from '../../src/log-destination.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'freehold-logdest-'));
const flushed = (w: LineWriter) => new Promise<void>((resolve, reject) => w.flush((err) => (err ? reject(err) : resolve())));
const line = (i: number) => `{"n":${i},"text":"ligne ${i} — 日本語 ✓ ${'x'.repeat(i % 97)}"}\n`;
const moduleUrl = JSON.stringify(new URL('../../src/log-destination.ts', import.meta.url).href);

test('lines reach a file whole and in order, multi-byte text included, held until 4 KB or a flush', async () => {
  const dir = tmp();
  const file = path.join(dir, 'log');
  const fd = fs.openSync(file, 'w');
  const writer = new LineWriter({ fd, minLength: 4096, flushEveryMs: 0 });
  try {
    writer.write(line(0));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(fs.readFileSync(file, 'utf8'), '', 'a lone line waits for more (or a flush)');
    let expected = line(0);
    for (let i = 1; i < 5000; i++) {
      writer.write(line(i));
      expected += line(i);
    }
    await flushed(writer);
    assert.equal(fs.readFileSync(file, 'utf8'), expected);
  } finally {
    writer.close();
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true });
  }
});

test('a full non-blocking pipe (EAGAIN) is waited for: nothing lost, nothing reordered; past maxPending lines are dropped and counted', async () => {
  const dir = tmp();
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  const writer = new LineWriter({ fd, minLength: 1024, flushEveryMs: 0, maxPending: 512 * 1024 });
  const readAll = (): string => {
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(65536);
    for (;;) {
      try {
        const n = fs.readSync(reader, buf);
        if (n === 0) break;
        chunks.push(Buffer.from(buf.subarray(0, n)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw err;
      }
    }
    return Buffer.concat(chunks).toString('utf8');
  };
  /** Reads the pipe until everything the writer holds has been written; returns what was read. */
  const drain = async (): Promise<string> => {
    let done = false;
    void flushed(writer).then(() => { done = true; });
    let got = '';
    while (!done) {
      await new Promise((r) => setTimeout(r, 5));
      got += readAll();
    }
    return got + readAll();
  };
  try {
    // ~400 KB, six times what the pipe holds: writes meet EAGAIN until the reader drains it.
    let expected = '';
    for (let i = 0; i < 4000; i++) {
      assert.equal(writer.write(line(i)), true);
      expected += line(i);
    }
    assert.equal(await drain(), expected);

    // Nobody reads now: the pipe fills, then the writer holds up to maxPending and drops the rest.
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 12_000; i++) {
      if (writer.write(line(i))) accepted++;
      else refused++;
      if (i % 500 === 0) await new Promise((r) => setTimeout(r, 2));
    }
    assert.ok(refused > 0, 'lines past maxPending are refused');
    // Once the reader catches up, the next line is taken, preceded by the note of how many were dropped.
    let rest = await drain();
    const afterDrop = '{"after":"drop"}\n';
    assert.equal(writer.write(afterDrop), true);
    rest += await drain();
    const lines = rest.split('\n').filter(Boolean);
    for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), `a whole line: ${l.slice(0, 80)}`);
    // Each note counts the lines dropped since the one before: together, every refused line.
    const notes = lines.filter((l) => l.includes('log lines were dropped'));
    assert.ok(notes.length > 0, 'the drop is said in the log');
    assert.equal(notes.reduce((sum, l) => sum + Number(/"msg":"(\d+) log lines were dropped/.exec(l)![1]), 0), refused);
    assert.equal(lines.filter((l) => l.startsWith('{"n":')).length, accepted);
    assert.equal(lines.at(-1), afterDrop.trim());
  } finally {
    writer.close();
    fs.closeSync(fd);
    fs.closeSync(reader);
    fs.rmSync(dir, { recursive: true });
  }
});

test('a destination that fails (its reader gone: EPIPE) loses lines, says so once on stderr, and the process goes on', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', `
    import { LineWriter } from ${moduleUrl};
    const w = new LineWriter({ fd: 1, minLength: 10, flushEveryMs: 20 });
    let i = 0;
    const t = setInterval(() => { w.write('{"n":' + (i++) + '}\\n'); if (i === 200) { clearInterval(t); setTimeout(() => { process.stderr.write('still running\\n'); process.exit(0); }, 200); } }, 2);
  `], { stdio: ['ignore', 'pipe', 'pipe'] });
  // The reader goes away at once.
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += String(d); });
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.equal(code, 0, stderr);
  assert.match(stderr, /still running/);
  assert.equal(stderr.match(/writing the log to descriptor 1 failed \(EPIPE\)/g)?.length, 1, stderr);
});

test('what is held is written synchronously when the process exits, also when it dies of an uncaught error', () => {
  const out = spawnSync(process.execPath, ['--import', 'tsx', '-e', `
    import { LineWriter } from ${moduleUrl};
    const w = new LineWriter({ fd: 1, minLength: 1 << 20, flushEveryMs: 0 });
    for (let i = 0; i < 1000; i++) w.write('{"n":' + i + '}\\n');
    process.exit(0);
  `], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  const lines = out.stdout.split('\n').filter(Boolean);
  assert.deepEqual(lines.map((l) => (JSON.parse(l) as { n: number }).n), Array.from({ length: 1000 }, (_, i) => i));
  const crashed = spawnSync(process.execPath, ['--import', 'tsx', '-e', `
    import { LineWriter } from ${moduleUrl};
    const w = new LineWriter({ fd: 1, minLength: 1 << 20, flushEveryMs: 0 });
    w.write('{"held":"before the crash"}\\n');
    setTimeout(() => { throw new Error('boom'); }, 10);
  `], { encoding: 'utf8' });
  assert.equal(crashed.status, 1);
  assert.match(crashed.stderr, /boom/);
  assert.equal(crashed.stdout, '{"held":"before the crash"}\n');
});
