/**
 * Summarises latency traces written with BENCH_TRACE (trace.ts): per row, its p50 and
 * p99, its p99 without the first second, and the 50 ms windows where most of its slow
 * responses (those over its p99) were sent.
 *
 *   npm run bench:tail -- bench/traces/*.json
 */
import { readFileSync } from 'node:fs';
import { summariseTrace, type Trace } from './trace.js';

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('usage: npm run bench:tail -- <trace files written with BENCH_TRACE=<folder>>\n');
  process.exit(2);
}
for (const file of files) {
  const trace = JSON.parse(readFileSync(file, 'utf8')) as Trace;
  if (trace.format !== 'freehold-bench-trace') throw new Error(`${file} is not a bench trace`);
  const t = summariseTrace(trace);
  const { row } = trace;
  const windows = t.worstWindows.map((w) => `${w.fromMs} ms: ${w.slow} of ${w.responses} (max ${w.maxMs} ms)`).join('; ');
  process.stdout.write(
    `${row.name} · ${row.backend} · ${row.connections} conn: ${t.n} responses, p50 ${t.p50} ms, p99 ${t.p99} ms; ` +
    `after the first ${t.afterStart.skipMs} ms p99 ${t.afterStart.p99} ms\n` +
    `  ${t.slow} over p99; the ${t.worstWindows.length} worst 50 ms windows hold ${Math.round(t.worstShare * 100)}% of them: ${windows || 'none'}\n`,
  );
}
