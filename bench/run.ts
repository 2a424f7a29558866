/**
 * `npm run bench`: freehold side by side with the machine's ceiling and a peer
 * server, all measured in the same run on loopback, each server in its own process.
 *
 *   ceiling     bare Fastify GET/POST, raw better-sqlite3, raw pg (when PostgreSQL is there);
 *               Fastify + SQLite write/read/query, each row just before its sqlite+fs CEPS row
 *   peer        Community Solid Server 7, file backend (PUT/GET of small JSON)
 *   CEPS        write, read by id, query (manifest-indexed field, and no index),
 *               update, delete, at 1/8/32 connections, per backend:
 *               sqlite+fs, flatfile+fs (smaller seed), postgres+s3 (s3rver started here);
 *               and the indexed query alone over 1M records (sqlite, postgres)
 *   files       10 MB upload/download
 *   portability export/import MB/s, migrate records/s
 *   memory      start-up time and idle RSS of `freehold serve`, RSS under load
 *
 * Prints a markdown table (previous run beside each row) and writes JSON to
 * bench/results/ (latest.json is the committed baseline; run-*.json are ignored).
 * Options (environment): BENCH_SECONDS, BENCH_SEED, BENCH_CONNECTIONS, BENCH_BACKENDS,
 * BENCH_FLATFILE_SEED, BENCH_BIG_SEED, BENCH_FILE_MB, BENCH_PEER=0, BENCH_POSTGRES=0, BENCH_QUICK=1,
 * BENCH_OUT, DATABASE_URL. See README "Performance".
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readOptions, BENCH_DIR, type Options } from './options.js';
import { traceTo } from './trace.js';
import { Backends, BACKEND_LABEL } from './backends.js';
import { buildTargets, rssOf, scriptArgs, SETTLE_MS, startReady, stop } from './processes.js';
import { runBareCeiling, SqliteHttpCeiling, type CeilingOp } from './ceiling.js';
import { measureSqliteCeiling } from './sqlite-ceiling.js';
import { measurePgCeiling, type PgCeiling } from './pg-ceiling.js';
import { runPeer, type PeerResult } from './peer.js';
import { indexedQuery, runCeps } from './ceps.js';
import { load } from './load.js';
import { runFiles } from './files.js';
import { runExportImport, runMigrate, type MigrateRow, type PortabilityRow } from './portability.js';
import { runStartup, type StartupResult } from './startup.js';
import { describeDataFilesystem } from './filesystem.js';
import { evaluateTargets, figuresOf, renderMarkdown, type BackendResult, type BenchResult, type BigQueryResult } from './report.js';
import type { TargetConfig, TargetInfo } from './target.js';

const log = (s: string) => process.stderr.write(s + '\n');

async function main(): Promise<void> {
  const opts = readOptions();
  traceTo(opts.traceDir);
  const t0 = Date.now();
  const loadAvgStart = os.loadavg();
  log(`bench: ${opts.seconds}s per row, connections ${opts.connections.join('/')}, seed ${opts.seed}, backends ${opts.backends.join(', ')}${opts.quick ? ' (QUICK)' : ''}`);
  if (loadAvgStart[0]! > 0.5) log(`bench: load average is ${loadAvgStart.map((x) => x.toFixed(2)).join(' ')}: other work is running, figures will be low`);
  if (opts.compiled) log(`  compiled targets in ${Math.round(buildTargets())} ms`);

  const backends = new Backends();
  const skipped: Record<string, string> = {};
  const stopAll = () => { void backends.cleanup().finally(() => process.exit(130)); };
  process.once('SIGINT', stopAll);
  try {
    if (opts.backends.includes('postgres')) {
      await backends.probePostgres();
      if ('skipped' in backends.postgres) skipped['postgres+s3'] = backends.postgres.skipped;
      else log(`  ${backends.postgres.server}`);
    }

    log('ceiling:');
    const settleMs = opts.quick ? 2000 : SETTLE_MS;
    const http = await runBareCeiling(opts.connections, opts.seconds, settleMs, log);
    log('  raw better-sqlite3 …');
    const sqlite = measureSqliteCeiling(opts.quick ? 2000 : 20000);
    let postgres: PgCeiling | undefined;
    if (backends.postgresUrl) {
      log('  raw pg single-row inserts …');
      postgres = await measurePgCeiling(backends.postgresUrl, Math.min(opts.seconds, 5));
    }

    let peer: PeerResult = { name: 'Community Solid Server', rows: [], skipped: 'BENCH_PEER=0' };
    if (opts.peer) {
      log('peer:');
      peer = await runPeer(backends, opts.connections, opts.seconds, log);
      if (peer.skipped) log(`  peer skipped: ${peer.skipped}`);
    }

    // The Fastify + SQLite ceiling runs beside the sqlite+fs target, each of its rows
    // measured just before the CEPS row it judges (ceiling.ts); alone, without one.
    log(`  Fastify + SQLite: seeding ${opts.seed} records …`);
    const sqliteHttp = await SqliteHttpCeiling.start(opts.seed);
    let results: BackendResult[];
    try {
      if (!opts.backends.includes('sqlite')) await sqliteHttp.runAll(opts.connections, opts.seconds, log);
      results = await runBackends(backends, opts, sqliteHttp);
    } finally {
      await sqliteHttp.stop();
    }
    http.rows.push(...sqliteHttp.sortedRows());

    log('portability:');
    const portability: PortabilityRow[] = [];
    const files = opts.portabilityFiles;
    portability.push(await runExportImport(backends, 'sqlite+fs', () => backends.stores('sqlite'), opts.portabilityRecords, files, opts.fileMb, log));
    if (backends.postgresUrl && opts.backends.includes('postgres')) {
      portability.push(await runExportImport(backends, 'postgres+s3', () => backends.stores('postgres'), opts.portabilityRecords, files, opts.fileMb, log));
    }
    const migrate: MigrateRow = await runMigrate(backends, opts.portabilityRecords, log);

    log('start-up and idle memory (freehold serve) …');
    const startup: StartupResult = await runStartup(backends, opts.quick ? 1 : 3, settleMs);

    const { outDir, traceDir, ...shownOptions } = opts;
    const dataFilesystem = describeDataFilesystem(os.tmpdir());
    const partial = {
      format: 'freehold-bench' as const, version: 2 as const,
      date: new Date().toISOString(), node: process.version,
      machine: { cpus: os.cpus().length, loadAvgStart, loadAvgEnd: os.loadavg() },
      options: shownOptions,
      durationSec: Math.round((Date.now() - t0) / 1000),
      ceiling: { http: http.rows, ...(http.idleRss.settled ? { bareIdleRss: http.idleRss.settled } : {}), ...(http.idleRss.early ? { bareEarlyRss: http.idleRss.early } : {}), sqlite, ...(postgres ? { postgres } : {}) },
      backends: results, peer, portability, migrate, startup, skipped,
      ...('server' in backends.postgres ? { postgresServer: backends.postgres.server } : {}),
      ...(dataFilesystem ? { dataFilesystem } : {}),
    };
    const result: BenchResult = { ...partial, targets: evaluateTargets(partial), figures: figuresOf(partial) };

    mkdirSync(outDir, { recursive: true });
    const latestFile = path.join(outDir, 'latest.json');
    const previous = existsSync(latestFile) ? (JSON.parse(readFileSync(latestFile, 'utf8')) as Partial<BenchResult>) : {};
    const json = JSON.stringify(result, null, 2) + '\n';
    writeFileSync(path.join(outDir, `run-${result.date.replace(/[:.]/g, '-')}.json`), json);
    // A quick smoke run never replaces the committed baseline unless it writes elsewhere.
    const isDefaultOut = outDir === path.join(BENCH_DIR, 'results');
    if (!(opts.quick && isDefaultOut)) writeFileSync(latestFile, json);
    process.stdout.write(renderMarkdown(result, previous.figures ?? {}));
    log(`bench: done in ${result.durationSec} s; JSON in ${outDir}`);
  } finally {
    process.removeListener('SIGINT', stopAll);
    await backends.cleanup();
  }
}

/** The CEPS and file rows of each backend's target; sqlite+fs's CEPS rows each after their ceiling row. */
async function runBackends(backends: Backends, opts: Options, sqliteHttp: SqliteHttpCeiling): Promise<BackendResult[]> {
  const results: BackendResult[] = [];
  for (const backend of opts.backends) {
    if (backend === 'postgres' && !backends.postgresUrl) continue;
    const label = BACKEND_LABEL[backend];
    const seed = backend === 'flatfile' ? opts.flatfileSeed : opts.seed;
    log(`${label}: seeding ${seed} records …`);
    const stores = await backends.stores(backend);
    const cfg: TargetConfig = { ...stores, seed, logLevel: opts.logLevel };
    const target = await startReady<TargetInfo>([...scriptArgs('bench/target'), JSON.stringify(cfg)]);
    try {
      const idleRss = await rssOf(target.child);
      const t = { child: target.child, base: `http://127.0.0.1:${target.info.port}`, token: target.info.token!, seed, backend: label, ...(backend === 'postgres' ? { database: 'postgres' } : {}) };
      const paired = backend === 'sqlite' ? (op: CeilingOp, c: number) => sqliteHttp.row(op, c, opts.seconds, log) : undefined;
      const rows = await runCeps(t, opts.connections, opts.seconds, log, paired);
      const files = await runFiles(t, opts.fileMb, opts.seconds, log);
      results.push({
        label, seed, seedPerSec: Math.round(target.info.seedPerSec ?? 0), readyMs: Math.round(target.readyMs), idleRss,
        ...(target.info.storeQuery ? { storeQuery: target.info.storeQuery } : {}), rows, files,
      });
    } finally {
      await stop(target.child);
    }
    if (backend !== 'flatfile' && opts.bigSeed > seed) {
      const big = await runBigQuery(backends, backend, opts.bigSeed, opts.seconds, opts.logLevel);
      results[results.length - 1]!.big = big;
    }
  }
  return results;
}

/**
 * The "indexed query over 1M records" target: a second target seeded with `seed`
 * records, for the indexed query alone, at the store (the target times it) and over
 * HTTP at one connection.
 */
async function runBigQuery(backends: Backends, backend: 'sqlite' | 'postgres', seed: number, seconds: number, logLevel: string): Promise<BigQueryResult> {
  const label = BACKEND_LABEL[backend];
  log(`${label}: seeding ${seed} records for the big indexed query …`);
  const cfg: TargetConfig = { ...(await backends.stores(backend)), seed, logLevel };
  const target = await startReady<TargetInfo>([...scriptArgs('bench/target'), JSON.stringify(cfg)]);
  try {
    const t = { child: target.child, base: `http://127.0.0.1:${target.info.port}`, token: target.info.token!, seed, backend: label };
    let i = 0;
    const http = await load({ name: 'CEPS query (indexed)', backend: label, connections: 1, seconds, opts: indexedQuery(t, () => i++) }, log);
    return { seed, seedPerSec: Math.round(target.info.seedPerSec ?? 0), storeQuery: target.info.storeQuery!.indexed, http };
  } finally {
    await stop(target.child);
  }
}

main().catch((err) => {
  process.stderr.write(String((err as Error)?.stack ?? err) + '\n');
  process.exit(1);
});
