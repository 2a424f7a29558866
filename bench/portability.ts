/**
 * Export, import and migrate, in this process straight through the core functions
 * (the HTTP routes only stream them): one owner with `records` small records in
 * three tables plus `files` files of `fileMb` each.
 *   export MB/s  = archive bytes / time of exportOwner
 *   import MB/s  = archive bytes / time of importOwner into fresh stores of the same kind
 *   migrate      = records/s of migrateOwner for an owner with records only (sqlite →
 *                  postgres, or sqlite → another sqlite file without PostgreSQL)
 */
import { createWriteStream, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createServices, type Services } from '../src/core/services.js';
import { exportOwner } from '../src/core/portability/export.js';
import { importOwner } from '../src/core/portability/import.js';
import { migrateOwner } from '../src/core/migration/migrate.js';
import type { BatchOp } from '../src/storage/types.js';
import { APP, seedRecord } from './dataset.js';
import type { Backends, Stores } from './backends.js';

export interface PortabilityRow {
  backend: string;
  records: number;
  files: number;
  archiveMb: number;
  exportMbPerSec: number;
  importMbPerSec: number;
  exportMs: number;
  importMs: number;
}

export interface MigrateRow {
  from: string;
  to: string;
  records: number;
  recordsPerSec: number;
  ms: number;
}

const OWNER = 'bench';

async function open(stores: Stores): Promise<Services> {
  const config = loadConfig({ FREEHOLD_RATE_LIMIT: 'off', FREEHOLD_CONFIG: '' }, { dataDir: stores.dataDir, port: 0 });
  config.records = stores.records;
  config.blobs = stores.blobs;
  const services = await createServices(config, createLogger('silent'));
  await services.accounts.create(OWNER, 'bench password 1', false);
  return services;
}

/** Records spread over three tables, written in batches as an import would. */
async function seedRecords(services: Services, owner: string, count: number): Promise<void> {
  const store = services.stores.records(owner);
  const now = Date.now();
  for (let i = 0; i < count; i += 5000) {
    const ops: BatchOp[] = [];
    for (let j = i; j < Math.min(i + 5000, count); j++) ops.push({ kind: 'put', table: `${APP}.t${j % 3}`, record: seedRecord(j, now) });
    await store.batch(owner, ops);
  }
}

async function seedFiles(services: Services, count: number, fileMb: number): Promise<void> {
  const access = { userId: OWNER, ownerId: OWNER, appName: APP };
  for (let k = 0; k < count; k++) {
    const bytes = randomBytes(Math.round(fileMb * 1024 * 1024));
    await services.files.upload(access, Readable.from([bytes]), `f${k}.bin`, 'application/octet-stream', {});
  }
}

const mbps = (bytes: number, ms: number) => Math.round((bytes / 1048576 / (ms / 1000)) * 10) / 10;

export async function runExportImport(backends: Backends, label: string, fresh: () => Promise<Stores>,
  records: number, files: number, fileMb: number, log: (s: string) => void): Promise<PortabilityRow> {
  log(`  export/import · ${label} (${records} records, ${files} × ${fileMb} MB)`);
  const source = await open(await fresh());
  const target = await open(await fresh());
  try {
    await seedRecords(source, OWNER, records);
    await seedFiles(source, files, fileMb);
    const zip = path.join(backends.tempDir('archive'), 'bench.zip');
    let t0 = performance.now();
    await exportOwner(source, OWNER, createWriteStream(zip));
    const exportMs = performance.now() - t0;
    const bytes = statSync(zip).size;
    t0 = performance.now();
    await importOwner(target, OWNER, zip);
    const importMs = performance.now() - t0;
    return {
      backend: label, records, files, archiveMb: Math.round((bytes / 1048576) * 10) / 10,
      exportMbPerSec: mbps(bytes, exportMs), importMbPerSec: mbps(bytes, importMs),
      exportMs: Math.round(exportMs), importMs: Math.round(importMs),
    };
  } finally {
    await source.close();
    await target.close();
  }
}

export async function runMigrate(backends: Backends, records: number, log: (s: string) => void): Promise<MigrateRow> {
  const from = await backends.stores('sqlite');
  const toPg = backends.postgresUrl !== undefined;
  const to = toPg
    ? { records: backends.freshPostgres(), blobs: `fs:${path.join(backends.tempDir('migrate'), 'files')}` }
    : { records: `sqlite:${path.join(backends.tempDir('migrate'), 'moved.db')}`, blobs: `fs:${path.join(backends.tempDir('migrate'), 'files')}` };
  const label = { from: 'sqlite+fs', to: toPg ? 'postgres+fs' : 'sqlite+fs (another file)' };
  log(`  migrate · ${label.from} → ${label.to} (${records} records)`);
  const services = await open(from);
  try {
    await seedRecords(services, OWNER, records);
    const t0 = performance.now();
    const result = await migrateOwner(services.stores, OWNER, to, { propagationMs: 0 });
    const ms = performance.now() - t0;
    return { ...label, records: result.records, recordsPerSec: Math.round(result.records / (ms / 1000)), ms: Math.round(ms) };
  } finally {
    await services.close();
  }
}
