/**
 * Store URLs for each backend pairing the bench runs: sqlite+fs (always),
 * flatfile+fs, postgres+s3 (when a PostgreSQL is reachable: DATABASE_URL, or the
 * throwaway cluster of scripts/pg-dev.sh; s3rver is started here). Every store is
 * fresh: temp folders, a new PostgreSQL schema, a new bucket; all removed at the end.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Backend } from './options.js';
import { ROOT } from './options.js';
import { scriptArgs, startReady, stop } from './processes.js';

export interface Stores {
  records: string;
  blobs: string;
  dataDir: string;
}

export const BACKEND_LABEL: Record<Backend, string> = { sqlite: 'sqlite+fs', flatfile: 'flatfile+fs', postgres: 'postgres+s3' };

export class Backends {
  private dirs: string[] = [];
  private schemas: string[] = [];
  private s3: { child: ChildProcess; urlTemplate: string } | null = null;
  /** Base PostgreSQL URL, where it came from and how it commits, or why there is none. */
  postgres: { url: string; source: string; server: string } | { skipped: string } = { skipped: 'not probed' };

  /** Finds a PostgreSQL: DATABASE_URL first, else starts scripts/pg-dev.sh's cluster (BENCH_POSTGRES=0 skips). */
  async probePostgres(): Promise<void> {
    if (/^(0|off|false|no)$/i.test(process.env.BENCH_POSTGRES ?? '')) {
      this.postgres = { skipped: 'BENCH_POSTGRES=0' };
      return;
    }
    let url = process.env.DATABASE_URL;
    let source = 'DATABASE_URL';
    if (!url) {
      const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'pg-dev.sh'), 'start'], { encoding: 'utf8', timeout: 120_000 });
      url = r.status === 0 ? r.stdout.trim().split('\n').pop() : undefined;
      source = 'scripts/pg-dev.sh';
      if (!url) {
        this.postgres = { skipped: `no DATABASE_URL and scripts/pg-dev.sh failed: ${(r.stderr || String(r.error ?? '')).trim().slice(0, 200)}` };
        return;
      }
    }
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      // Whether commits reach the disk decides what the write rows mean, so the report says it.
      const { rows } = await client.query<{ v: string; fsync: string; sc: string }>(
        "SELECT current_setting('server_version') AS v, current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sc",
      );
      const { v, fsync, sc } = rows[0]!;
      this.postgres = { url, source, server: `PostgreSQL ${v} from ${source}: fsync=${fsync}, synchronous_commit=${sc}` };
    } catch (err) {
      this.postgres = { skipped: `PostgreSQL at ${source} unreachable: ${(err as Error).message}` };
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  get postgresUrl(): string | undefined {
    return 'url' in this.postgres ? this.postgres.url : undefined;
  }

  tempDir(label: string): string {
    const dir = mkdtempSync(path.join(tmpdir(), `freehold-bench-${label}-`));
    this.dirs.push(dir);
    return dir;
  }

  /** A PostgreSQL record-store URL on a fresh schema of its own. */
  freshPostgres(): string {
    const base = this.postgresUrl;
    if (!base) throw new Error('no PostgreSQL');
    const schema = `bench_${randomBytes(5).toString('hex')}`;
    this.schemas.push(schema);
    const u = new URL(base);
    u.searchParams.set('schema', schema);
    return u.toString();
  }

  /** A blob-store URL on a fresh bucket of the bench's s3rver (started on first use). */
  async freshS3(): Promise<string> {
    if (!this.s3) {
      const started = await startReady<{ urlTemplate: string }>(scriptArgs('bench/s3-server'), { timeoutMs: 60_000 });
      this.s3 = { child: started.child, urlTemplate: started.info.urlTemplate };
    }
    return this.s3.urlTemplate.replace('__BUCKET__', `bench-${randomBytes(5).toString('hex')}`);
  }

  async stores(backend: Backend): Promise<Stores> {
    const dataDir = this.tempDir(backend);
    switch (backend) {
      case 'sqlite': return { records: `sqlite:${path.join(dataDir, 'freehold.db')}`, blobs: `fs:${path.join(dataDir, 'files')}`, dataDir };
      case 'flatfile': return { records: `flatfile:${path.join(dataDir, 'records')}`, blobs: `fs:${path.join(dataDir, 'files')}`, dataDir };
      case 'postgres': return { records: this.freshPostgres(), blobs: await this.freshS3(), dataDir };
    }
  }

  async cleanup(): Promise<void> {
    if (this.s3) await stop(this.s3.child).catch(() => undefined);
    this.s3 = null;
    const base = this.postgresUrl;
    if (base && this.schemas.length) {
      const client = new pg.Client({ connectionString: base });
      try {
        await client.connect();
        for (const s of this.schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
      } catch { /* a leftover schema in a throwaway cluster is harmless */ } finally {
        await client.end().catch(() => undefined);
      }
    }
    this.schemas = [];
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
    this.dirs = [];
  }
}
