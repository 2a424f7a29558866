/**
 * Latency traces (bench/trace.ts): what a row's trace holds, and how its tail is read
 * from it. Made-up responses, so every figure is known; no load is run here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RowTrace, summariseTrace, traceTo, type Trace } from '../../bench/trace.js';

/** A row of 2 s: 1,000 responses of 1 ms sent evenly, but for `slow` (send ms → latency ms). */
function row(slow: Record<number, number>): Pick<Trace, 'responses'> {
  const responses: Trace['responses'] = [];
  for (let i = 0; i < 1000; i++) {
    const sent = i * 2;
    responses.push([sent, slow[sent] ?? 1]);
  }
  return { responses };
}

test('a tail bunched in one window: the window is named and holds every slow response', () => {
  const slow: Record<number, number> = {};
  for (let sent = 1500; sent < 1530; sent += 2) slow[sent] = 20; // 15 responses in one 50 ms window
  const t = summariseTrace(row(slow));
  assert.equal(t.n, 1000);
  assert.equal(t.p50, 1);
  assert.equal(t.p99, 20);
  // Over the row's p99 (20 ms): none, since the p99 itself is a slow response.
  assert.equal(t.slow, 0);
  const t2 = summariseTrace(row({ ...slow, 1502: 40, 1504: 40 }));
  assert.equal(t2.slow, 2);
  assert.deepEqual(t2.worstWindows, [{ fromMs: 1500, slow: 2, responses: 25, maxMs: 40 }]);
  assert.equal(t2.worstShare, 1);
  assert.equal(t2.afterStart.n, 500);
  assert.equal(t2.afterStart.p99, t2.p99, 'the bunch is after the first second: leaving that out changes nothing');
});

test('a tail at the start: gone once the first second is left out', () => {
  const slow: Record<number, number> = {};
  for (let sent = 0; sent < 40; sent += 2) slow[sent] = 30 + sent; // 20 slow responses in the first 40 ms
  const t = summariseTrace(row(slow));
  assert.ok(t.p99 >= 30, `p99 ${t.p99}`);
  assert.equal(t.afterStart.p99, 1);
  assert.equal(t.worstWindows[0]!.fromMs, 0);
  assert.equal(t.worstWindows.length, 1);
});

test('a row writes its trace to the folder given, and none without one', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'freehold-trace-'));
  try {
    traceTo(null);
    const off = new RowTrace();
    off.add(1);
    assert.equal(off.done({ name: 'CEPS read by id', backend: 'sqlite+fs', connections: 8 }), null);

    traceTo(path.join(dir, 'traces'));
    const on = new RowTrace();
    on.add(1.234);
    on.add(2);
    const file = on.done({ name: 'CEPS query (indexed)', backend: 'sqlite+fs', connections: 32 });
    new RowTrace().done({ name: 'CEPS query (indexed)', backend: 'sqlite+fs', connections: 32 });
    assert.deepEqual(readdirSync(path.join(dir, 'traces')).sort(), ['001-CEPS_query_indexed_sqlite+fs_32.json', '002-CEPS_query_indexed_sqlite+fs_32.json'], 'two rows of one name: two traces');
    const trace = JSON.parse(readFileSync(file!, 'utf8')) as Trace;
    assert.equal(trace.format, 'freehold-bench-trace');
    assert.deepEqual(trace.row, { name: 'CEPS query (indexed)', backend: 'sqlite+fs', connections: 32 });
    assert.deepEqual(trace.responses.map(([, latency]) => latency), [1.23, 2]);
    for (const [sent] of trace.responses) assert.equal(typeof sent, 'number');
  } finally {
    traceTo(null);
    rmSync(dir, { recursive: true, force: true });
  }
});
