/**
 * Per-response latency traces of load rows (BENCH_TRACE=<folder>), for reading a row's
 * tail: whether its slow responses come at the start (warming up) or in bunches (pauses
 * of the whole server) or throughout (a row bound by CPU). The table keeps one p99 per
 * row; a trace keeps every response: when it was sent and how long it took.
 *
 *   npm run bench:tail -- <trace files…>   summarises traces (tail.ts)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { summarise } from './stats.js';

export interface Trace {
  format: 'freehold-bench-trace';
  row: { name: string; backend: string; connections: number };
  /** Per 2xx response, in the order they came back: ms since the row started that it was sent, and its latency in ms. */
  responses: Array<[sentMs: number, latencyMs: number]>;
}

let folder: string | null = null;
/** Rows traced so far: file names start with the row's place in the run (two rows may share a name). */
let written = 0;

/** Where load rows write their traces from now on; null: they keep none. */
export function traceTo(dir: string | null): void {
  folder = dir;
  written = 0;
  if (dir) mkdirSync(dir, { recursive: true });
}

/** Collects one row's responses; `done` writes them (when tracing is on). */
export class RowTrace {
  private readonly t0 = performance.now();
  private readonly responses: Array<[number, number]> = [];
  readonly on = folder !== null;

  add(latencyMs: number): void {
    if (!this.on) return;
    const sent = performance.now() - this.t0 - latencyMs;
    this.responses.push([round(sent), round(latencyMs)]);
  }

  done(row: Trace['row']): string | null {
    if (!folder) return null;
    const place = String(++written).padStart(3, '0');
    const file = path.join(folder, `${place}-${slug(`${row.name} ${row.backend} ${row.connections}`)}.json`);
    const trace: Trace = { format: 'freehold-bench-trace', row, responses: this.responses };
    writeFileSync(file, JSON.stringify(trace));
    return file;
  }
}

export interface TailSummary {
  n: number;
  p50: number;
  p99: number;
  /** The row without the responses sent in its first `skipMs`. */
  afterStart: { skipMs: number; n: number; p99: number };
  /** Responses over the row's p99. */
  slow: number;
  /** The windows (of `windowMs`, by send time) holding the most slow responses, most first. */
  worstWindows: Array<{ fromMs: number; slow: number; responses: number; maxMs: number }>;
  /** Share of the slow responses that the worst windows hold. */
  worstShare: number;
}

export function summariseTrace(trace: Pick<Trace, 'responses'>, skipMs = 1000, windowMs = 50, windows = 5): TailSummary {
  const all = trace.responses;
  const whole = summarise(all.map(([, l]) => l));
  const later = summarise(all.filter(([s]) => s >= skipMs).map(([, l]) => l));
  const byWindow = new Map<number, { slow: number; responses: number; maxMs: number }>();
  let slow = 0;
  for (const [sent, latency] of all) {
    const key = Math.floor(Math.max(0, sent) / windowMs);
    const w = byWindow.get(key) ?? { slow: 0, responses: 0, maxMs: 0 };
    w.responses++;
    w.maxMs = Math.max(w.maxMs, latency);
    if (latency > whole.p99) {
      w.slow++;
      slow++;
    }
    byWindow.set(key, w);
  }
  const worst = [...byWindow].filter(([, w]) => w.slow > 0).sort((a, b) => b[1].slow - a[1].slow || a[0] - b[0]).slice(0, windows);
  const inWorst = worst.reduce((sum, [, w]) => sum + w.slow, 0);
  return {
    n: whole.n, p50: whole.p50, p99: whole.p99,
    afterStart: { skipMs, n: later.n, p99: later.p99 },
    slow,
    worstWindows: worst.map(([key, w]) => ({ fromMs: key * windowMs, ...w })),
    worstShare: slow === 0 ? 0 : Math.round((inWorst / slow) * 100) / 100,
  };
}

const round = (x: number) => Math.round(x * 100) / 100;
const slug = (s: string) => s.replace(/[^A-Za-z0-9.+-]+/g, '_');
