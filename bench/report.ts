/**
 * The result of one run: its JSON shape, the flat `figures` map used to show the
 * previous run beside each row, the targets (read from the figures, never
 * asserted), and the markdown table.
 */
import type { LoadRow } from './load.js';
import type { FileRow } from './files.js';
import type { PeerResult } from './peer.js';
import type { MigrateRow, PortabilityRow } from './portability.js';
import type { StartupResult } from './startup.js';
import type { Rss } from './processes.js';
import type { PgCeiling } from './pg-ceiling.js';
import type { CeilingResult } from './sqlite-ceiling.js';
import type { Latency } from './stats.js';
import type { Options } from './options.js';
import { BARE_GET, BARE_POST, SQLITE_HTTP_QUERY, SQLITE_HTTP_READ, SQLITE_HTTP_WRITE } from './ceiling.js';

export interface BackendResult {
  label: string;
  seed: number;
  seedPerSec: number;
  /** spawn → ready line, including seeding. */
  readyMs: number;
  idleRss?: Rss;
  storeQuery?: { indexed: Latency; unindexed: Latency };
  rows: LoadRow[];
  files: FileRow[];
  /** The indexed query again, on a second target seeded with opts.bigSeed records. */
  big?: BigQueryResult;
}

export interface BigQueryResult {
  seed: number;
  seedPerSec: number;
  /** Store level, no HTTP. */
  storeQuery: Latency;
  /** HTTP, one connection. */
  http: LoadRow;
}

export interface BenchResult {
  format: 'freehold-bench';
  version: 2;
  date: string;
  node: string;
  machine: { cpus: number; loadAvgStart: number[]; loadAvgEnd: number[] };
  options: Omit<Options, 'outDir' | 'traceDir'>;
  durationSec: number;
  ceiling: { http: LoadRow[]; bareIdleRss?: Rss; bareEarlyRss?: Rss; sqlite: CeilingResult; postgres?: PgCeiling };
  backends: BackendResult[];
  peer: PeerResult;
  portability: PortabilityRow[];
  migrate?: MigrateRow;
  startup?: StartupResult;
  skipped: Record<string, string>;
  /** Which PostgreSQL served the postgres+s3 rows and whether its commits were durable (absent before session 9). */
  postgresServer?: string;
  /** The filesystem under the data directories of the sqlite+fs and flatfile+fs targets (bench/filesystem.ts); runs before session 10 lack it. */
  dataFilesystem?: string;
  targets: Target[];
  figures: Record<string, number>;
}

export interface Target {
  target: string;
  measured: string;
  /** null: not measured in this run. */
  met: boolean | null;
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const fmt = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '–' : n >= 100 ? Math.round(n).toLocaleString('en-US') : String(r1(n)));
const ms = (n: number | undefined) => (n === undefined ? '–' : n < 10 ? n.toFixed(2) : n.toFixed(1));
/** A row's CPU per request: the server's, plus its database's where it has one ("120 + 60"). */
const cpuCell = (server: number | undefined, database: number | undefined) =>
  (server === undefined ? '–' : database === undefined ? fmt(server) : `${fmt(server)} + ${fmt(database)}`);

export function findRow(rows: LoadRow[], name: string, backend: string, connections: number): LoadRow | undefined {
  return rows.find((r) => r.name === name && r.backend === backend && r.connections === connections);
}

/** Every number worth comparing run to run, under a stable key. */
export function figuresOf(r: Omit<BenchResult, 'figures' | 'targets'>): Record<string, number> {
  const f: Record<string, number> = {};
  const put = (k: string, v: number | undefined) => { if (v !== undefined && Number.isFinite(v)) f[k] = r1(v); };
  for (const row of [...r.ceiling.http, ...r.backends.flatMap((b) => b.rows), ...r.peer.rows]) {
    const k = `${row.name} | ${row.backend} | ${row.connections}`;
    put(`${k} | req/s`, row.reqPerSec);
    put(`${k} | p99`, row.p99);
    put(`${k} | cpu µs`, row.cpuUs);
    put(`${k} | db cpu µs`, row.dbCpuUs);
  }
  for (const b of r.backends) {
    for (const fr of b.files) put(`${fr.name} | ${b.label} | MB/s`, fr.mbPerSec);
    put(`store query indexed | ${b.label} | p50`, b.storeQuery?.indexed.p50);
    put(`store query no index | ${b.label} | p50`, b.storeQuery?.unindexed.p50);
    put(`rss peak | ${b.label}`, Math.max(0, ...b.rows.map((x) => x.rssPeak ?? 0)) || undefined);
    if (b.big) {
      put(`store query indexed | ${b.label} | ${b.big.seed} | p50`, b.big.storeQuery.p50);
      put(`store query indexed | ${b.label} | ${b.big.seed} | p99`, b.big.storeQuery.p99);
      put(`CEPS query (indexed) | ${b.label} | ${b.big.seed} | p99`, b.big.http.p99);
    }
  }
  for (const p of r.portability) {
    put(`export | ${p.backend} | MB/s`, p.exportMbPerSec);
    put(`import | ${p.backend} | MB/s`, p.importMbPerSec);
  }
  if (r.migrate) put(`migrate | ${r.migrate.to} | records/s`, r.migrate.recordsPerSec);
  put('startup | ms', r.startup?.startMs);
  put('idle rss | MB', r.startup?.idleRss?.rss);
  put('sqlite raw insert/s', r.ceiling.sqlite.insertPerSec);
  put('sqlite raw select/s', r.ceiling.sqlite.selectPerSec);
  put('pg raw insert/s | 1', r.ceiling.postgres?.insert1);
  put('pg raw insert/s | 8', r.ceiling.postgres?.insert8);
  return f;
}

export function evaluateTargets(r: Omit<BenchResult, 'figures' | 'targets'>): Target[] {
  const t: Target[] = [];
  const main = 'sqlite+fs';
  const conns = [...new Set(r.backends.find((b) => b.label === main)?.rows.map((x) => x.connections) ?? [])].sort((a, b) => a - b);
  const rows = r.backends.flatMap((b) => b.rows);
  const pct = (a?: LoadRow, b?: LoadRow) => (a && b && b.reqPerSec > 0 ? (100 * a.reqPerSec) / b.reqPerSec : undefined);
  const ratio = (a?: LoadRow, b?: LoadRow) => (a && b && b.reqPerSec > 0 ? a.reqPerSec / b.reqPerSec : undefined);
  // Whole percents, unless rounding would carry a figure across the 50% line (49.5% is not met).
  const pctText = (p: number) => ((Math.round(p) >= 50) !== (p >= 50) ? p.toFixed(1) : String(Math.round(p)));
  for (const [op, peer] of [['CEPS write', 'CSS PUT (create)'], ['CEPS read by id', 'CSS GET']] as const) {
    const ceil = JUDGED_CEILING[op]!;
    const perConn = conns.map((c) => ({ c, p: pct(findRow(rows, op, main, c), findRow(r.ceiling.http, ceil, 'ceiling', c)) }));
    const known = perConn.filter((x) => x.p !== undefined) as Array<{ c: number; p: number }>;
    const bare = conns.map((c) => ({ c, p: pct(findRow(rows, op, main, c), findRow(r.ceiling.http, BARE_OF[op]!, 'ceiling', c)) }))
      .filter((x) => x.p !== undefined) as Array<{ c: number; p: number }>;
    t.push({
      target: `${op} ≥ 50% of the ceiling "${ceil}" (${main})`,
      measured: (known.map((x) => `${pctText(x.p)}% @${x.c}`).join(', ') || 'not measured') +
        (bare.length ? ` (of a bare Fastify reply with no storage: ${bare.map((x) => `${Math.round(x.p)}% @${x.c}`).join(', ')})` : ''),
      met: known.length ? known.every((x) => x.p >= 50) : null,
    });
    const perPeer = conns.map((c) => ({ c, x: ratio(findRow(rows, op, main, c), findRow(r.peer.rows, peer, 'peer', c)) }))
      .filter((x) => x.x !== undefined) as Array<{ c: number; x: number }>;
    t.push({
      target: `${op} ≥ 5× the peer's ${peer} (${main})`,
      measured: perPeer.map((x) => `${r1(x.x)}× @${x.c}`).join(', ') || `not measured${r.peer.skipped ? ` (${r.peer.skipped})` : ''}`,
      met: perPeer.length ? perPeer.every((x) => x.x >= 5) : null,
    });
  }
  for (const b of r.backends) {
    const at32 = b.rows.filter((x) => x.connections === 32 && x.name !== 'CEPS query (no index)');
    // What the machine itself gives at 32 connections, for reading the figures: the same calls with no freehold in them.
    const ceilings = [SQLITE_HTTP_WRITE, SQLITE_HTTP_READ, SQLITE_HTTP_QUERY]
      .map((name) => findRow(r.ceiling.http, name, 'ceiling', 32)).filter((x): x is LoadRow => x !== undefined);
    const machine = b.label === main && ceilings.length
      ? ` (Fastify + SQLite alone at 32: ${ceilings.map((x) => `${x.name.replace('Fastify + SQLite ', '')} ${ms(x.p99)} at ${fmt(x.reqPerSec)} req/s`).join(', ')})` : '';
    t.push({
      target: `CEPS p99 < 10 ms at 32 connections (${b.label})`,
      measured: (at32.length ? at32.map((x) => `${x.name.replace('CEPS ', '')} ${ms(x.p99)}`).join(', ') : 'not measured (no 32-connection rows)') + machine,
      met: at32.length ? at32.every((x) => x.p99 < 10) : null,
    });
  }
  for (const b of r.backends.filter((x) => x.label !== 'flatfile+fs')) {
    // The main target when it was seeded big enough, else the second, big one.
    const q1 = b.seed >= 1_000_000 ? findRow(b.rows, 'CEPS query (indexed)', b.label, 1) : b.big?.http;
    const store = b.seed >= 1_000_000 ? b.storeQuery?.indexed : b.big?.storeQuery;
    const seed = b.seed >= 1_000_000 ? b.seed : b.big?.seed;
    const big = seed !== undefined && seed >= 1_000_000;
    t.push({
      target: `indexed query over 1M records < 5 ms (${b.label})`,
      measured: big
        ? `${seed.toLocaleString('en-US')} records: store p50 ${ms(store?.p50)} / p99 ${ms(store?.p99)} ms; HTTP @1 p50 ${ms(q1?.p50)} / p99 ${ms(q1?.p99)} ms`
        : `not measured: no target had 1M records (BENCH_BIG_SEED=1000000 runs one)`,
      met: big && store && q1 ? store.p99 < 5 && q1.p99 < 5 : null,
    });
  }
  const idle = r.startup?.idleRss?.rss;
  t.push({
    target: `idle RSS ≤ 60 MB (freehold serve, fresh store, idle ${Math.round((r.startup?.settleMs ?? 0) / 1000)} s; MB = MiB, as top shows it)`,
    measured: idle === undefined ? 'not measured' : `${r1(idle)} MiB = ${r1(idle * 1.048576)} MB of 10⁶ bytes (bare Fastify on this Node: ${fmt(r.ceiling.bareIdleRss?.rss)} MiB)`,
    met: idle === undefined ? null : idle <= 60,
  });
  const pgw = findRow(rows, 'CEPS write', 'postgres+s3', 8);
  const raw8 = r.ceiling.postgres?.insert8;
  t.push({
    target: 'postgres CEPS write ≥ 50% of raw pg single-row inserts (8 concurrent)',
    measured: pgw && raw8 ? `${fmt(pgw.reqPerSec)} vs ${fmt(raw8)} = ${pctText((100 * pgw.reqPerSec) / raw8)}%` : `not measured${r.skipped.postgres ? ` (${r.skipped.postgres})` : ''}`,
    met: pgw && raw8 ? pgw.reqPerSec >= raw8 / 2 : null,
  });
  return t;
}

/**
 * The ceiling a CEPS row is judged against: Fastify doing the same storage call on raw
 * better-sqlite3 (write: one insert; read: one select by id; query: one indexed page). The bare Fastify reply,
 * with no storage at all, is shown beside it for every row.
 */
const JUDGED_CEILING: Record<string, string> = {
  'CEPS write': SQLITE_HTTP_WRITE, 'CEPS read by id': SQLITE_HTTP_READ, 'CEPS query (indexed)': SQLITE_HTTP_QUERY,
};
const BARE_OF: Record<string, string> = {
  'CEPS write': BARE_POST, 'CEPS update': BARE_POST,
  'CEPS read by id': BARE_GET, 'CEPS query (indexed)': BARE_GET, 'CEPS delete': BARE_GET,
};
const PEER_OF: Record<string, string> = { 'CEPS write': 'CSS PUT (create)', 'CEPS read by id': 'CSS GET' };

export function renderMarkdown(r: BenchResult, prev: Record<string, number>): string {
  const out: string[] = [];
  const was = (k: string) => fmt(prev[k]);
  const load = r.machine.loadAvgStart[0]!;
  out.push(`freehold bench · ${r.date} · Node ${r.node} · ${r.machine.cpus} cores · load average at start ${r.machine.loadAvgStart.map(r1).join(' ')}, at end ${r.machine.loadAvgEnd.map(r1).join(' ')}${load > 0.5 ? ' (**machine was busy: figures are low and noisy**)' : ''}`);
  out.push(`${r.options.seconds} s per row · seed ${r.options.seed.toLocaleString('en-US')} records (flatfile ${r.options.flatfileSeed.toLocaleString('en-US')}) · ${r.options.compiled ? 'targets compiled to JS' : 'targets run through tsx'} · freehold log level ${r.options.logLevel}${r.options.quick ? ' · QUICK smoke run: sizes are tiny, figures mean nothing' : ''}`);
  if (r.dataFilesystem) out.push(`data directories (sqlite+fs, flatfile+fs): ${r.dataFilesystem}`);
  if (r.postgresServer) out.push(`postgres+s3 rows: ${r.postgresServer}${/fsync=off|synchronous_commit=off/.test(r.postgresServer) ? ' (commits are not flushed to disk before they are acknowledged)' : ''}`);
  out.push('');
  out.push('### Requests (autocannon on loopback, server in its own process)');
  out.push('');
  out.push("CPU µs/req: the server process's CPU (user + system, every thread) per answered request in the row, and for postgres+s3 rows PostgreSQL's processes' after the +; it moves with the machine's speed much less than req/s and p99 do.");
  out.push('');
  out.push('| row | backend | conn | req/s | p50 ms | p99 ms | errors | CPU µs/req | % of Fastify + SQLite | % of bare Fastify | × peer | previous req/s | previous p99 | previous CPU |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const rowLine = (x: LoadRow) => {
    const k = `${x.name} | ${x.backend} | ${x.connections}`;
    const of = (name: string | undefined) => (name ? findRow(r.ceiling.http, name, 'ceiling', x.connections) : undefined);
    const share = (c: LoadRow | undefined) => (c && c.reqPerSec > 0 ? `${Math.round((100 * x.reqPerSec) / c.reqPerSec)}%` : '');
    const peer = PEER_OF[x.name] ? findRow(r.peer.rows, PEER_OF[x.name]!, 'peer', x.connections) : undefined;
    out.push(`| ${x.name} | ${x.backend} | ${x.connections} | ${fmt(x.reqPerSec)} | ${ms(x.p50)} | ${ms(x.p99)} | ${x.errors} | ${cpuCell(x.cpuUs, x.dbCpuUs)} | ${share(of(JUDGED_CEILING[x.name]))} | ${share(of(BARE_OF[x.name]))} | ${peer && peer.reqPerSec > 0 ? `${r1(x.reqPerSec / peer.reqPerSec)}×` : ''} | ${was(`${k} | req/s`)} | ${was(`${k} | p99`)} | ${cpuCell(prev[`${k} | cpu µs`], prev[`${k} | db cpu µs`])} |`);
  };
  r.ceiling.http.forEach(rowLine);
  r.peer.rows.forEach(rowLine);
  for (const b of r.backends) b.rows.forEach(rowLine);
  if (r.peer.skipped) out.push('', `Peer (${r.peer.name}) not run: ${r.peer.skipped}`);
  for (const [what, why] of Object.entries(r.skipped)) out.push('', `${what} not run: ${why}`);

  out.push('', '### Query: manifest-declared index vs none (store level, no HTTP; CEPS equality query, 50 per page)', '');
  out.push('| backend | records | indexed p50 ms | indexed p99 ms | no index p50 ms | no index p99 ms | HTTP indexed req/s @1 | HTTP no index req/s @1 | previous indexed p50 |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const b of r.backends) {
    const q = b.storeQuery;
    out.push(`| ${b.label} | ${b.seed.toLocaleString('en-US')} | ${ms(q?.indexed.p50)} | ${ms(q?.indexed.p99)} | ${ms(q?.unindexed.p50)} | ${ms(q?.unindexed.p99)} | ${fmt(findRow(b.rows, 'CEPS query (indexed)', b.label, 1)?.reqPerSec)} | ${fmt(findRow(b.rows, 'CEPS query (no index)', b.label, 1)?.reqPerSec)} | ${was(`store query indexed | ${b.label} | p50`)} |`);
    if (b.big) {
      const g = b.big;
      out.push(`| ${b.label} | ${g.seed.toLocaleString('en-US')} | ${ms(g.storeQuery.p50)} | ${ms(g.storeQuery.p99)} | | | ${fmt(g.http.reqPerSec)} (p50 ${ms(g.http.p50)}, p99 ${ms(g.http.p99)} ms) | | ${was(`store query indexed | ${b.label} | ${g.seed} | p50`)} |`);
    }
  }

  out.push('', '### Files, export, import, migrate', '');
  out.push('| what | backend | MB/s or records/s | detail | previous |');
  out.push('|---|---|---:|---|---:|');
  for (const b of r.backends) {
    for (const fr of b.files) out.push(`| ${fr.name} | ${b.label} | ${fmt(fr.mbPerSec)} MB/s | ${fr.sizeMb} MB file, 1 connection, ${fr.requests} transfers, ${fr.errors} errors | ${was(`${fr.name} | ${b.label} | MB/s`)} |`);
  }
  for (const p of r.portability) {
    const detail = `${p.records.toLocaleString('en-US')} records + ${p.files} files → ${p.archiveMb} MB archive`;
    out.push(`| export | ${p.backend} | ${fmt(p.exportMbPerSec)} MB/s | ${detail} in ${p.exportMs} ms | ${was(`export | ${p.backend} | MB/s`)} |`);
    out.push(`| import | ${p.backend} | ${fmt(p.importMbPerSec)} MB/s | same archive into fresh stores, ${p.importMs} ms | ${was(`import | ${p.backend} | MB/s`)} |`);
  }
  if (r.migrate) {
    const m = r.migrate;
    out.push(`| migrate | ${m.from} → ${m.to} | ${fmt(m.recordsPerSec)} records/s | ${m.records.toLocaleString('en-US')} records, verified, ${m.ms} ms | ${was(`migrate | ${m.to} | records/s`)} |`);
  }

  out.push('', '### Memory and start-up', '');
  out.push('| what | value | previous |');
  out.push('|---|---:|---:|');
  if (r.startup) {
    out.push(`| start-up: spawn → first /ceps/ping (freehold serve, median of ${r.startup.runs.length}) | ${r.startup.startMs} ms | ${was('startup | ms')} |`);
    const settled = `${Math.round((r.startup.settleMs ?? 0) / 1000)} s`;
    out.push(`| idle RSS, freehold serve on a fresh store, after ${settled} idle | ${fmt(r.startup.idleRss?.rss)} MiB (anon ${fmt(r.startup.idleRss?.anon)}) | ${was('idle rss | MB')} |`);
    out.push(`| RSS 2 s after start, before V8 returns start-up's garbage | ${fmt(r.startup.earlyRss?.rss)} MiB (anon ${fmt(r.startup.earlyRss?.anon)}) | |`);
  }
  out.push(`| idle RSS, bare Fastify (floor on this Node), measured the same way | ${fmt(r.ceiling.bareIdleRss?.rss)} MiB (anon ${fmt(r.ceiling.bareIdleRss?.anon)}); 2 s after start ${fmt(r.ceiling.bareEarlyRss?.rss)} MiB | |`);
  for (const b of r.backends) {
    const peak = Math.max(0, ...b.rows.map((x) => x.rssPeak ?? 0));
    out.push(`| RSS under load, ${b.label} (${b.seed.toLocaleString('en-US')} records; idle after seeding ${fmt(b.idleRss?.rss)} MB) | ${fmt(peak || undefined)} MB | ${was(`rss peak | ${b.label}`)} |`);
  }
  if (r.peer.rows.length) {
    const peak = Math.max(0, ...r.peer.rows.map((x) => x.rssPeak ?? 0));
    out.push(`| peer ${r.peer.name} ${r.peer.version ?? ''}: start-up ${fmt(r.peer.startMs)} ms, idle ${fmt(r.peer.idleRss?.rss)} MB, under load | ${fmt(peak || undefined)} MB | |`);
  }

  out.push('', '### Raw ceilings (same machine, same run)', '');
  out.push(`- better-sqlite3, same pragmas: ${fmt(r.ceiling.sqlite.insertPerSec)} inserts/s (one per transaction), ${fmt(r.ceiling.sqlite.selectPerSec)} point selects/s (previous ${was('sqlite raw insert/s')} / ${was('sqlite raw select/s')})`);
  if (r.ceiling.postgres) out.push(`- pg single-row INSERTs: ${fmt(r.ceiling.postgres.insert1)}/s from 1 client, ${fmt(r.ceiling.postgres.insert8)}/s from 8 (previous ${was('pg raw insert/s | 1')} / ${was('pg raw insert/s | 8')})`);

  out.push('', '### Targets (read from this run, not asserted)', '');
  out.push('| target | measured | met |');
  out.push('|---|---|---|');
  for (const t of r.targets) out.push(`| ${t.target} | ${t.measured} | ${t.met === null ? 'not measured' : t.met ? 'yes' : '**no**'} |`);
  return out.join('\n') + '\n';
}
