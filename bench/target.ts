/**
 * A benchmark target, run as its own process so that the load generator and the
 * server do not share a core: `bare` (a Fastify JSON reply, the HTTP ceiling) or
 * `freehold` (the real server on a fresh embedded store, seeded for queries).
 * Prints one JSON line with what the load generator needs, then serves until killed.
 */
import Fastify from 'fastify';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createServices } from '../src/core/services.js';
import { buildServer } from '../src/http/server.js';

const mode = process.argv[2];
const seedCount = Number(process.argv[3] ?? '100000');

if (mode === 'bare') {
  const app = Fastify({ logger: false });
  app.get('/', async () => ({ hello: 'world' }));
  app.post('/', async (request) => ({ _id: 'x', got: request.body !== undefined }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  process.stdout.write(JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 }) + '\n');
} else if (mode === 'freehold') {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'freehold-bench-'));
  const config = loadConfig({ FREEHOLD_RATE_LIMIT: 'off', FREEHOLD_CONFIG: '' }, { dataDir, port: 0 });
  config.records = `sqlite:${path.join(dataDir, 'freehold.db')}`;
  config.blobs = `fs:${path.join(dataDir, 'files')}`;
  const services = await createServices(config, createLogger('silent'));
  const app = await buildServer(services, false);
  await services.accounts.create('bench', 'bench password 1', true);
  const APP = 'com.freehold.bench';
  const token = await services.tokens.issue({ kind: 'app', userId: 'bench', ownerId: 'bench', appName: APP, expiresAt: Date.now() + 3600_000 });
  // The query table: `kind` takes 100 values, so an equality query returns ~1/100 of the table.
  const store = services.stores.records('bench');
  await store.ensureIndex('bench', `${APP}.seeded`, [['kind']]);
  const ids: string[] = [];
  const batchSize = 5000;
  const now = Date.now();
  for (let i = 0; i < seedCount; i += batchSize) {
    const ops = [];
    for (let j = i; j < Math.min(i + batchSize, seedCount); j++) {
      const id = `seed${j.toString(36).padStart(6, '0')}`;
      if (j % 97 === 0) ids.push(id);
      ops.push({ kind: 'put' as const, table: `${APP}.seeded`, record: { _id: id, _date_created: now, _date_modified: now + j, kind: `k${j % 1000}`, n: j, text: 'lorem ipsum dolor sit amet' } });
    }
    await store.batch('bench', ops);
  }
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  process.stdout.write(JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0, token, app: APP, ids }) + '\n');
} else {
  process.stderr.write('usage: target.ts bare|freehold [seedCount]\n');
  process.exit(2);
}

// Exit cleanly on SIGINT so that --cpu-prof runs can write their profile.
process.on('SIGINT', () => process.exit(0));
