/**
 * The freehold benchmark target, run as its own process so that the load generator
 * and the server do not share a core (and so that its memory can be read alone):
 *
 *   target.ts '<json>'   the real server on the stores named in the JSON
 *                        ({ records, blobs, dataDir, seed, logLevel }), with the bench
 *                        app installed from its manifest and `seed` records
 *
 * Sends what the load generator needs over IPC (`{ ready: info }`), then serves until
 * SIGTERM/SIGINT (which close the stores, so queued writes commit and --cpu-prof
 * runs write their profile).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createServices, type Services } from '../src/core/services.js';
import { buildServer } from '../src/http/server.js';
import { queryFromParams } from '../src/http/ceps/query-params.js';
import type { BatchOp } from '../src/storage/types.js';
import { APP, BENCH_MANIFEST, KINDS, PAGE, SEEDED, seedRecord } from './dataset.js';
import { summarise, type Latency } from './stats.js';

export interface TargetConfig {
  records: string;
  blobs: string;
  dataDir: string;
  seed: number;
  /** pino level of the server's own logs (request lines at `info`, the default of `npm start`). */
  logLevel: string;
}

export interface TargetInfo {
  port: number;
  token?: string;
  owner?: string;
  seed?: number;
  /** Records/s of the seeding batches (store level). */
  seedPerSec?: number;
  /** Store-level timing of the CEPS equality query, without HTTP: declared index vs none. */
  storeQuery?: { indexed: Latency; unindexed: Latency };
}

const OWNER = 'bench';

function portOf(server: { address(): unknown }): number {
  const addr = server.address();
  return typeof addr === 'object' && addr && 'port' in addr ? (addr as { port: number }).port : 0;
}

/** Installs the bench app the way an owner would, so its manifest's index is made by freehold itself. */
async function installBenchApp(services: Services): Promise<void> {
  const folder = mkdtempSync(path.join(tmpdir(), 'freehold-bench-app-'));
  try {
    writeFileSync(path.join(folder, 'manifest.json'), JSON.stringify(BENCH_MANIFEST));
    writeFileSync(path.join(folder, 'index.html'), '<!doctype html><title>bench</title>');
    await services.apps.install(OWNER, { folder });
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

async function seed(services: Services, count: number): Promise<number> {
  const store = services.stores.records(OWNER);
  const batchSize = 5000;
  const now = Date.now();
  const t0 = performance.now();
  for (let i = 0; i < count; i += batchSize) {
    const ops: BatchOp[] = [];
    for (let j = i; j < Math.min(i + batchSize, count); j++) ops.push({ kind: 'put', table: SEEDED, record: seedRecord(j, now) });
    await store.batch(OWNER, ops);
  }
  return count / ((performance.now() - t0) / 1000 || 1);
}

/**
 * The CEPS equality query straight on the store (the same Query the HTTP route
 * builds), so the table can show the store's share of a query's latency, and so the
 * 1M-record case can be judged without HTTP noise. Time-boxed: an unindexed query
 * over a big table takes tens of ms each.
 */
async function timeStoreQuery(services: Services, field: 'kind' | 'tag', budgetMs: number, maxQueries: number): Promise<Latency> {
  const store = services.stores.records(OWNER);
  const samples: number[] = [];
  const end = performance.now() + budgetMs;
  for (let i = 0; i < maxQueries && (i < 3 || performance.now() < end); i++) {
    const q = queryFromParams({ [field]: `k${(i * 7) % KINDS}`, _count: String(PAGE) });
    const t0 = performance.now();
    await store.query(OWNER, SEEDED, q.where, q.options);
    samples.push(performance.now() - t0);
  }
  return summarise(samples);
}

async function freehold(cfg: TargetConfig): Promise<{ info: TargetInfo; close: () => Promise<void> }> {
  const config = loadConfig({ FREEHOLD_RATE_LIMIT: 'off', FREEHOLD_CONFIG: '' }, { dataDir: cfg.dataDir, port: 0 });
  config.records = cfg.records;
  config.blobs = cfg.blobs;
  // The real logger at the real level: request log lines are part of what a request costs.
  const services = await createServices(config, createLogger(cfg.logLevel));
  const app = await buildServer(services);
  await services.accounts.create(OWNER, 'bench password 1', true);
  await installBenchApp(services);
  const token = await services.tokens.issue({ kind: 'app', userId: OWNER, ownerId: OWNER, appName: APP, expiresAt: Date.now() + 24 * 3600_000 });
  const seedPerSec = await seed(services, cfg.seed);
  const storeQuery = {
    indexed: await timeStoreQuery(services, 'kind', 1500, 5000),
    unindexed: await timeStoreQuery(services, 'tag', 2000, 50),
  };
  await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    info: { port: portOf(app.server), token, owner: OWNER, seed: cfg.seed, seedPerSec, storeQuery },
    close: async () => {
      await app.close();
      await services.close();
    },
  };
}

if (!process.argv[2]) {
  process.stderr.write('usage: target.ts <json config>\n');
  process.exit(2);
}
const started = await freehold(JSON.parse(process.argv[2]) as TargetConfig);
process.send?.({ ready: started.info });

// The parent asks for memory figures over IPC where /proc is not there to read.
process.on('message', (m) => {
  if (m === 'memory') process.send?.({ rss: process.memoryUsage().rss });
});
let closing = false;
const shutdown = () => {
  if (closing) return;
  closing = true;
  started.close().catch(() => undefined).finally(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
