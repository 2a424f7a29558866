/**
 * Start-up time and idle memory of the real server, as `npm start` runs it
 * (`freehold serve`, compiled JS, fresh embedded stores): spawn → first successful
 * GET /ceps/ping, median of a few starts; then, on the last start, RSS 2 s after it
 * answered and again once it has sat idle `settleMs` (processes.ts SETTLE_MS: why).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { freePort, idleRssOf, scriptArgs, stop, type Rss } from './processes.js';
import type { Backends } from './backends.js';

export interface StartupResult {
  /** Median ms from spawn to the first 200 from /ceps/ping. */
  startMs: number;
  runs: number[];
  /** After sitting idle settleMs: the idle figure. */
  idleRss?: Rss;
  /** 2 s after the first answer, before V8 has given back start-up's garbage. */
  earlyRss?: Rss;
  settleMs?: number;
}

/** The environment without the caller's FREEHOLD_* settings: the default embedded stores, always. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FREEHOLD_')));
}

export async function runStartup(backends: Backends, runs: number, settleMs: number): Promise<StartupResult> {
  const times: number[] = [];
  let idleRss: Rss | undefined;
  let earlyRss: Rss | undefined;
  for (let k = 0; k < runs; k++) {
    const dataDir = backends.tempDir('serve');
    const port = await freePort();
    const t0 = performance.now();
    const child = spawn(process.execPath, [...scriptArgs('src/cli/main'), 'serve'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...cleanEnv(), PORT: String(port), HOST: '127.0.0.1', FREEHOLD_DATA: path.join(dataDir, 'data'), FREEHOLD_CONFIG: '', FREEHOLD_LOG_LEVEL: 'warn' },
    });
    try {
      for (;;) {
        if (child.exitCode !== null) throw new Error(`freehold serve exited with ${child.exitCode}`);
        try {
          const res = await fetch(`http://127.0.0.1:${port}/ceps/ping`);
          await res.arrayBuffer();
          if (res.status === 200) break;
        } catch { /* not listening yet */ }
        if (performance.now() - t0 > 60_000) throw new Error('freehold serve did not answer /ceps/ping within 60 s');
        await new Promise((r) => setTimeout(r, 5));
      }
      times.push(performance.now() - t0);
      if (k === runs - 1) {
        const idle = await idleRssOf(child, 2000, settleMs);
        idleRss = idle.settled;
        earlyRss = idle.early;
      }
    } finally {
      await stop(child);
    }
  }
  const sorted = [...times].sort((a, b) => a - b);
  return { startMs: Math.round(sorted[Math.floor(sorted.length / 2)]!), runs: times.map(Math.round), idleRss, earlyRss, settleMs };
}
