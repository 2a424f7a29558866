import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobStore } from '../../storage/types.js';
import type { Services } from '../services.js';
import { FreeholdError } from '../errors.js';
import { assertUserId } from '../names.js';
import type { ImportSummary } from '../portability/import.js';
import type { ProgressCallback } from '../portability/progress.js';
import { SYSTEM_OWNER } from '../system-tables.js';

/** Leases, so that of several processes sharing the host store one makes each backup. */
const JOBS_TABLE = 'system.jobs';

export interface Generation {
  /** The backup's name: its time, as in its key (`backups/<owner>/<name>.zip`). */
  name: string;
  key: string;
  size: number;
  takenAt: number;
  /**
   * Taken before the account that has this name now was made: of a removed account of the
   * same name, perhaps another person. Kept (backups exist to bring data back), but never
   * pruned, restored by default or counted as this account's by the schedule.
   */
  earlierAccount: boolean;
}

export interface BackupOptions {
  /** How many backups of each owner to keep; older ones are deleted after a new one is complete. */
  keep: number;
  /** How often each owner is backed up by the schedule (ms); 0: only on demand. */
  intervalMs: number;
}

/** `2026-11-25T13-40-00-000Z`: sortable, and safe in any store's keys. */
function generationName(at: Date): string {
  return at.toISOString().replace(/[:.]/g, '-');
}

/**
 * A backup's key is exactly `<prefix>/<name>.zip`. Deeper keys are not backups: the
 * backup store may be shared (an owner's own store in the same bucket, by mistake or on
 * purpose), and a key planted below the prefix must never pass for one.
 */
function parseGeneration(prefix: string, key: string, size: number, accountCreatedAt: number | undefined): Generation | null {
  const m = /^(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z)\.zip$/.exec(key.startsWith(`${prefix}/`) ? key.slice(prefix.length + 1) : '');
  if (!m) return null;
  const iso = m[1]!.replace(/T(\d\d)-(\d\d)-(\d\d)-(\d{3})Z$/, 'T$1:$2:$3.$4Z');
  const takenAt = Date.parse(iso);
  // A name no clock could have made (month 13) is not a backup of ours.
  if (Number.isNaN(takenAt) || generationName(new Date(takenAt)) !== m[1]) return null;
  return { name: m[1]!, key, size, takenAt, earlierAccount: accountCreatedAt === undefined || takenAt < accountCreatedAt };
}

/**
 * Backups of each owner, as export archives (docs/export-format.md) in a second
 * blob store (an S3 bucket, a disk elsewhere), N generations kept. A backup is an
 * export, so restoring one is an import: verified whole before anything is written.
 */
export class BackupService {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly services: Services, private readonly target: BlobStore, private readonly opts: BackupOptions) {}

  private prefix(owner: string): string {
    return `backups/${assertUserId(owner)}`;
  }

  /** Backs one owner up now; the new generation exists only once complete. */
  async run(owner: string, onProgress?: ProgressCallback): Promise<Generation> {
    if (!(await this.services.accounts.get(assertUserId(owner)))) throw new FreeholdError('not_found', `No user ${owner} on this server`);
    // The zip code loads with the first backup, not with every server that has a backup store.
    const { exportOwner } = await import('../portability/export.js');
    const at = new Date();
    const key = `${this.prefix(owner)}/${generationName(at)}.zip`;
    const pass = new PassThrough();
    // Either side failing stops the other: a stalled upload must not leave the export
    // waiting on a pipe nobody reads, and a failed export must not become a backup.
    const stored = this.target.put(key, pass, { contentType: 'application/zip' })
      .catch((err: unknown) => { pass.destroy(err as Error); throw err; });
    const exported = exportOwner(this.services, owner, pass, onProgress)
      .catch((err: unknown) => { pass.destroy(err as Error); throw err; });
    const [info] = await Promise.all([stored, exported]);
    await this.prune(owner);
    return { name: generationName(at), key, size: info.size, takenAt: at.getTime(), earlierAccount: false };
  }

  /** The backups kept under the owner's name, newest first, those of an earlier account of that name marked. */
  async list(owner: string): Promise<Generation[]> {
    const prefix = this.prefix(owner);
    const createdAt = (await this.services.accounts.get(owner))?.createdAt;
    const out: Generation[] = [];
    for await (const { key, size } of this.target.list(prefix)) {
      const g = parseGeneration(prefix, key, size, createdAt);
      if (g) out.push(g);
    }
    return out.sort((a, b) => b.takenAt - a.takenAt);
  }

  /** This account's own backups, newest first. */
  private async own(owner: string): Promise<Generation[]> {
    return (await this.list(owner)).filter((g) => !g.earlierAccount);
  }

  private async prune(owner: string): Promise<void> {
    const all = await this.own(owner);
    for (const old of all.slice(Math.max(this.opts.keep, 1))) await this.target.delete(old.key);
  }

  /**
   * Brings a backup back (the newest of this account unless named): every record, file
   * and app in it returns as it was then. Records made since are kept; nothing is
   * deleted. A backup of an earlier account of the same name comes back only when named
   * and `earlierAccount` says the admin knows it is the same person.
   */
  async restore(owner: string, name?: string, onProgress?: ProgressCallback, opts: { earlierAccount?: boolean } = {}): Promise<ImportSummary & { generation: string }> {
    const all = await this.list(owner);
    const g = name === undefined ? all.find((x) => !x.earlierAccount) : all.find((x) => x.name === name);
    if (!g) {
      const older = all.length > 0 ? ` (${all.length} of an earlier account named ${owner} are kept: see \`backup list\`)` : '';
      throw new FreeholdError('not_found', name === undefined ? `No backups of ${owner}${older}` : `No backup ${name} of ${owner}`);
    }
    if (g.earlierAccount && !opts.earlierAccount) {
      throw new FreeholdError('conflict', `Backup ${g.name} was taken before the account ${owner} was made: it belongs to an earlier account of that name, `
        + 'perhaps another person. Restore it only if this is the same person, with --earlier-account');
    }
    const { importOwner } = await import('../portability/import.js');
    const dir = await mkdtemp(path.join(tmpdir(), 'freehold-restore-'));
    try {
      const body = await this.target.get(g.key);
      if (!body) throw new FreeholdError('not_found', `Backup ${g.name} vanished`);
      const file = path.join(dir, 'backup.zip');
      await pipeline(body, createWriteStream(file));
      // Back as it was then, also where the record was changed since: that is what a restore is for.
      return { ...(await importOwner(this.services, owner, file, onProgress, undefined, { replaceNewer: true })), generation: g.name };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Backs up every owner whose newest backup is older than the interval. One process wins each slot. */
  async runDue(now = Date.now()): Promise<string[]> {
    if (this.opts.intervalMs <= 0) return [];
    const done: string[] = [];
    for (const user of await this.services.accounts.list()) {
      // One taken while the clock ran ahead would otherwise count as recent until its date comes.
      const newest = (await this.own(user.userId)).find((g) => g.takenAt <= now);
      if (newest && now - newest.takenAt < this.opts.intervalMs) continue;
      // The slot's lease names the account, not just its id: one made again is backed up in the same slot.
      if (!(await this.lease(`${user.userId}/${user.createdAt}`, Math.floor(now / this.opts.intervalMs)))) continue;
      try {
        await this.run(user.userId);
        done.push(user.userId);
      } catch (err) {
        this.services.log.error({ err, owner: user.userId }, 'backup failed');
      }
    }
    return done;
  }

  /** Takes the (account, slot) lease, unless another process already has. */
  private async lease(owner: string, slot: number): Promise<boolean> {
    const t = Date.now();
    try {
      await this.services.stores.host.create(SYSTEM_OWNER, JOBS_TABLE, { _id: `backup/${owner}/${slot}`, _date_created: t, _date_modified: t });
      return true;
    } catch (err) {
      if (err instanceof FreeholdError && err.code === 'conflict') return false;
      throw err;
    }
  }

  /** What killed backups left in the backup store itself (fs: temp files). */
  async sweepLeftovers(olderThanMs: number): Promise<number> {
    return (await this.target.sweepLeftovers?.(olderThanMs)) ?? 0;
  }

  /** Checks every few minutes for owners due a backup. */
  start(checkEveryMs = 5 * 60_000): void {
    if (this.opts.intervalMs <= 0 || this.timer) return;
    const tick = () => {
      this.running ??= this.runDue().then(() => undefined, (err: unknown) => {
        this.services.log.error({ err }, 'scheduled backups failed');
      }).finally(() => { this.running = undefined; });
    };
    this.timer = setInterval(tick, checkEveryMs);
    this.timer.unref();
    setImmediate(tick);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
