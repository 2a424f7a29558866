/**
 * `npm run bench`: CEPS write, read-by-id and indexed query on loopback with
 * autocannon, beside the machine's ceiling measured in the same run (a bare Fastify
 * reply, raw better-sqlite3). Prints a markdown table with the previous run's figures
 * and writes JSON to bench/results/. Options: BENCH_SECONDS (default 8),
 * BENCH_CONNECTIONS (default 8), BENCH_SEED (records seeded for the query, default 100000).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { measureSqliteCeiling } from './sqlite-ceiling.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 8);
const seed = Number(process.env.BENCH_SEED ?? 100000);

interface Row { name: string; reqPerSec: number; p50: number; p99: number; errors: number }

async function startTarget(mode: string): Promise<{ child: ChildProcess; info: { port: number; token?: string; app?: string; ids?: string[] } }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'target.ts'), mode, String(seed)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${mode} target exited with ${code}`)));
  });
  return { child, info: JSON.parse(line) };
}

async function load(name: string, opts: autocannon.Options): Promise<Row> {
  process.stderr.write(`  ${name} …\n`);
  const r = await autocannon({ connections, duration: seconds, ...opts });
  return { name, reqPerSec: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx };
}

async function main() {
  process.stderr.write(`bench: ${seconds}s per run, ${connections} connections, ${seed} seeded records\n`);
  const rows: Row[] = [];

  const bare = await startTarget('bare');
  const bareUrl = `http://127.0.0.1:${bare.info.port}`;
  rows.push(await load('ceiling: bare Fastify GET', { url: bareUrl + '/' }));
  rows.push(await load('ceiling: bare Fastify POST', { url: bareUrl + '/', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"title":"hello"}' }));
  bare.child.kill();

  process.stderr.write('  seeding freehold …\n');
  const fh = await startTarget('freehold');
  const base = `http://127.0.0.1:${fh.info.port}`;
  const auth = { authorization: `Bearer ${fh.info.token}`, 'content-type': 'application/json' };
  const app = fh.info.app!;
  const ids = fh.info.ids!;
  let i = 0;
  rows.push(await load('CEPS write', { url: `${base}/ceps/write/${app}`, method: 'POST', headers: auth, body: JSON.stringify({ title: 'hello', text: 'lorem ipsum dolor sit amet', n: 1 }) }));
  rows.push(await load('CEPS read by id', {
    url: base, headers: auth,
    requests: [{ setupRequest: (req) => ({ ...req, method: 'GET', path: `/ceps/read/${app}.seeded/${ids[i++ % ids.length]}` }) }],
  }));
  rows.push(await load(`CEPS query (indexed equality, ${seed} records)`, {
    url: base, headers: auth,
    requests: [{ setupRequest: (req) => ({ ...req, method: 'GET', path: `/ceps/query/${app}.seeded?kind=k${i++ % 1000}&_count=50` }) }],
  }));
  fh.child.kill();

  process.stderr.write('  raw better-sqlite3 …\n');
  const sqlite = measureSqliteCeiling();

  const resultsDir = path.join(here, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const latestFile = path.join(resultsDir, 'latest.json');
  const previous: { rows?: Row[] } = existsSync(latestFile) ? JSON.parse(readFileSync(latestFile, 'utf8')) : {};
  const prev = new Map((previous.rows ?? []).map((r) => [r.name, r]));
  const result = { date: new Date().toISOString(), node: process.version, seconds, connections, seed, rows, sqlite };
  writeFileSync(latestFile, JSON.stringify(result, null, 2) + '\n');
  writeFileSync(path.join(resultsDir, `run-${result.date.replace(/[:.]/g, '-')}.json`), JSON.stringify(result, null, 2) + '\n');

  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const ceilingGet = rows[0]!.reqPerSec;
  const ceilingPost = rows[1]!.reqPerSec;
  const lines = [
    `| benchmark | req/s | p50 ms | p99 ms | errors | % of ceiling | previous req/s | previous p99 |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|`,
  ];
  for (const r of rows) {
    const ceiling = r.name === 'CEPS write' ? ceilingPost : r.name.startsWith('CEPS') ? ceilingGet : undefined;
    const p = prev.get(r.name);
    lines.push(`| ${r.name} | ${fmt(r.reqPerSec)} | ${r.p50} | ${r.p99} | ${r.errors} | ${ceiling ? Math.round((100 * r.reqPerSec) / ceiling) + '%' : ''} | ${p ? fmt(p.reqPerSec) : '–'} | ${p ? p.p99 : '–'} |`);
  }
  lines.push('', `raw better-sqlite3 (same machine, same run): ${fmt(sqlite.insertPerSec)} inserts/s (one per transaction), ${fmt(sqlite.selectPerSec)} point selects/s`);
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err) => {
  process.stderr.write(String(err?.stack ?? err) + '\n');
  process.exit(1);
});
