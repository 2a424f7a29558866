/**
 * The processes the bench starts: targets, the real CLI, s3rver, the peer. Each runs
 * alone so that the load generator (this process) and the server never share an
 * event loop, and so that each one's memory can be read on its own.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import path from 'node:path';
import { BENCH_DIR, ROOT } from './options.js';

const BUILD_DIR = path.join(BENCH_DIR, 'tmp', 'build');

/** A script of ours, compiled or through tsx. */
export type Script = 'bench/target' | 'bench/bare-target' | 'bench/sqlite-http-target' | 'bench/s3-server' | 'src/cli/main';
let compiled = false;

/**
 * Compiles the targets and the CLI once per run into bench/tmp/build (git-ignored),
 * so that start-up time and memory are those of `npm start` (plain JS), not of tsx
 * transpiling on load. Type errors elsewhere in a work tree still emit JS.
 */
export function buildTargets(): number {
  const t0 = performance.now();
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(BENCH_DIR, 'tsconfig.targets.json')], { cwd: ROOT, encoding: 'utf8' });
  if (!existsSync(path.join(BUILD_DIR, 'bench', 'target.js'))) {
    throw new Error(`Compiling the bench targets failed:\n${r.stdout}${r.stderr}`);
  }
  compiled = true;
  return performance.now() - t0;
}

export function scriptArgs(script: Script): string[] {
  return compiled ? [path.join(BUILD_DIR, `${script}.js`)] : ['--import', 'tsx', path.join(ROOT, `${script}.ts`)];
}

export interface Started<T> {
  child: ChildProcess;
  info: T;
  /** ms from spawn to the ready line. */
  readyMs: number;
}

/**
 * Spawns `node <args>` and waits for its ready message over IPC (`{ ready: info }`),
 * so its stdout stays free for what the program writes there in production: the
 * server's own log lines go to /dev/null, at the cost of writing them, as they would
 * go to a journal.
 */
export async function startReady<T>(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Started<T>> {
  const t0 = performance.now();
  const timeoutMs = opts.timeoutMs ?? 900_000;
  const child = spawn(process.execPath, args, { cwd: ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const info = await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')}: not ready in ${timeoutMs} ms`)), timeoutMs);
    child.once('message', (m) => { clearTimeout(timer); resolve((m as { ready: T }).ready); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${args.join(' ')} exited with ${code} before it was ready`)); });
  });
  return { child, info, readyMs: performance.now() - t0 };
}

/** Stops a child we started: SIGTERM (it closes its stores), SIGKILL if it hangs. */
export async function stop(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export interface Rss {
  /** Resident set, MB: what `ps`/`top` show. */
  rss: number;
  /** Of which anonymous memory (heap, buffers), MB; the rest is mapped files: node's binary, native modules, SQLite's mmap. */
  anon?: number;
}

/**
 * How long an idle server is watched before its RSS counts as idle. Start-up leaves
 * garbage that V8 keeps until its memory reducer runs, about 8 s after start-up's
 * allocations stop; a figure taken before that measures start-up, not idling.
 */
export const SETTLE_MS = 15_000;

export interface IdleRss {
  /** Soon after the server answered. */
  early?: Rss;
  /** After `settleMs` without a request: the idle figure. */
  settled?: Rss;
}

/** RSS of an idle child: once `earlyMs` after now, and again after `settleMs`. Nothing is sent to it meanwhile. */
export async function idleRssOf(child: ChildProcess, earlyMs: number, settleMs: number): Promise<IdleRss> {
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, Math.min(earlyMs, settleMs)));
  const early = await rssOf(child);
  await new Promise((r) => setTimeout(r, Math.max(0, settleMs - (performance.now() - t0))));
  return { early, settled: await rssOf(child) };
}

/** Resident memory of a child: /proc on Linux, else the child's own process.memoryUsage over IPC. */
export async function rssOf(child: ChildProcess): Promise<Rss | undefined> {
  if (child.pid === undefined || child.exitCode !== null) return undefined;
  const status = `/proc/${child.pid}/status`;
  if (existsSync(status)) {
    const text = readFileSync(status, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024 };
  }
  if (!child.send) return undefined;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), 2000);
    child.once('message', (m) => { clearTimeout(timer); resolve({ rss: (m as { rss: number }).rss / 1048576 }); });
    child.send('memory');
  });
}

/** Samples a child's RSS every `everyMs` while `work` runs; returns the peak. */
export async function peakRssDuring<T>(child: ChildProcess, work: () => Promise<T>, everyMs = 250): Promise<{ result: T; peak?: Rss }> {
  let peak: Rss | undefined;
  const sample = async () => {
    const r = await rssOf(child);
    if (r && (!peak || r.rss > peak.rss)) peak = r;
  };
  const timer = setInterval(() => void sample(), everyMs);
  try {
    const result = await work();
    await sample();
    return { result, peak };
  } finally {
    clearInterval(timer);
  }
}

/** A free loopback port, for children that must be told theirs up front. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}
