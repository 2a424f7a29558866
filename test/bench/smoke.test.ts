import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * `npm run bench` in quick mode on tiny sizes: it must start its servers, print the
 * table and write valid JSON. No timing is asserted: figures depend on the machine.
 */
test('bench harness (quick mode) prints a table and writes valid JSON', { timeout: 240_000 }, async () => {
  const out = mkdtempSync(path.join(tmpdir(), 'freehold-bench-smoke-'));
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'bench', 'run.ts')], {
      cwd: root,
      env: {
        ...process.env, BENCH_QUICK: '1', BENCH_OUT: out, BENCH_SECONDS: '0.5', BENCH_SEED: '300', BENCH_FLATFILE_SEED: '100', BENCH_BIG_SEED: '600',
        BENCH_CONNECTIONS: '1', BENCH_BACKENDS: 'sqlite,flatfile', BENCH_PEER: '0', BENCH_POSTGRES: '0', BENCH_PORTABILITY_RECORDS: '100', BENCH_PORTABILITY_FILES: '1',
        BENCH_TRACE: path.join(out, 'traces'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, `bench failed:\n${stderr.slice(-3000)}`);

    assert.match(stdout, /\| row \| backend \| conn \| req\/s \| p50 ms \| p99 ms \|/);
    for (const row of ['bare Fastify GET', 'Fastify + SQLite insert', 'Fastify + SQLite read by id', 'Fastify + SQLite indexed query', 'CEPS write', 'CEPS read by id', 'CEPS query (indexed)', 'CEPS update', 'CEPS delete', 'CEPS query (no index)']) {
      assert.ok(stdout.includes(`| ${row} |`), `table has no ${row} row`);
    }
    assert.match(stdout, /### Targets/);
    // Each Fastify + SQLite ceiling row runs right before the sqlite+fs CEPS row it judges.
    const progress = stderr.split('\n').map((l) => l.trim());
    for (const [ceiling, ceps] of [['Fastify + SQLite insert', 'CEPS write'], ['Fastify + SQLite read by id', 'CEPS read by id'], ['Fastify + SQLite indexed query', 'CEPS query (indexed)']]) {
      const at = progress.indexOf(`${ceiling} · ceiling · 1 conn`);
      assert.ok(at >= 0, `no progress line for ${ceiling}`);
      assert.equal(progress[at + 1], `${ceps} · sqlite+fs · 1 conn`, `${ceiling} is followed by ${progress[at + 1]}`);
    }

    const runs = readdirSync(out).filter((f) => /^run-.*\.json$/.test(f));
    assert.equal(runs.length, 1);
    const result = JSON.parse(readFileSync(path.join(out, runs[0]!), 'utf8'));
    assert.equal(result.format, 'freehold-bench');
    for (const ceiling of result.ceiling.http) assert.ok(ceiling.requests > 0 && ceiling.errors === 0 && (process.platform !== 'linux' || Number.isInteger(ceiling.cpuUs)), JSON.stringify(ceiling));
    assert.deepEqual(result.backends.map((b: { label: string }) => b.label), ['sqlite+fs', 'flatfile+fs']);
    for (const b of result.backends) {
      assert.ok(b.rows.length >= 6, `${b.label}: ${b.rows.length} rows`);
      for (const r of b.rows) assert.equal(typeof r.reqPerSec, 'number');
      // The server's CPU per request is read from /proc for every row (never a claim about its size).
      if (process.platform === 'linux') for (const r of b.rows) assert.ok(Number.isInteger(r.cpuUs) && r.cpuUs >= 0, JSON.stringify(r));
      assert.equal(b.files.length, 2);
    }
    // The big-seed query ran on sqlite (not on flat files), and the 1M target says it was not 1M.
    const [sqlite, flatfile] = result.backends;
    assert.equal(sqlite.big.seed, 600);
    assert.ok(sqlite.big.http.requests > 0 && sqlite.big.http.errors === 0, JSON.stringify(sqlite.big));
    assert.equal(flatfile.big, undefined);
    assert.match(stdout, /\| sqlite\+fs \| 600 \|/);
    assert.match(stdout, /indexed query over 1M records < 5 ms \(sqlite\+fs\) \| not measured/);
    assert.ok(result.portability.length >= 1 && result.migrate.records > 0);
    assert.ok(result.startup.startMs > 0);
    // Idle memory is read twice, soon after start and once settled, for freehold and for bare Fastify alike.
    for (const rss of [result.startup.idleRss, result.startup.earlyRss, result.ceiling.bareIdleRss, result.ceiling.bareEarlyRss]) {
      assert.ok(rss.rss > 10 && rss.rss < 2000, JSON.stringify(rss));
    }
    assert.match(stdout, /\| idle RSS, freehold serve on a fresh store, after 2 s idle \| [\d.]+ MiB/);
    assert.ok(Object.keys(result.figures).length > 20);
    // A run into its own folder also writes latest.json there (never into bench/results from a test).
    assert.deepEqual(JSON.parse(readFileSync(path.join(out, 'latest.json'), 'utf8')).date, result.date);
    assert.equal(result.options.traceDir, undefined, 'a local folder is not part of the published options');

    // BENCH_TRACE: every load row left a trace with as many responses as the row counted, and bench:tail reads one.
    const traces = readdirSync(path.join(out, 'traces')).sort();
    const queryRow = sqlite.rows.find((r: { name: string; connections: number }) => r.name === 'CEPS query (indexed)' && r.connections === 1);
    // The first of that name: the big-seed target's query row, later in the run, has the same name.
    const queryTrace = traces.find((f) => f.endsWith('-CEPS_query_indexed_sqlite+fs_1.json'));
    assert.ok(queryTrace, traces.join(', '));
    assert.ok(traces.some((f) => f.endsWith('-Fastify_+_SQLite_insert_ceiling_1.json')), traces.join(', '));
    const trace = JSON.parse(readFileSync(path.join(out, 'traces', queryTrace), 'utf8'));
    assert.equal(trace.responses.length, queryRow.requests);
    const tail = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'bench', 'tail.ts'), path.join(out, 'traces', queryTrace)], { cwd: root, encoding: 'utf8' });
    assert.equal(tail.status, 0, tail.stderr);
    assert.match(tail.stdout, /^CEPS query \(indexed\) · sqlite\+fs · 1 conn: \d+ responses, p50 [\d.]+ ms, p99 [\d.]+ ms; after the first 1000 ms p99 [\d.]+ ms\n/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
