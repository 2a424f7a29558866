import type { Command } from 'commander';
import { withServices } from './context.js';
import { interruptible } from './interrupt.js';
import { maskStoreUrl } from '../core/storage-settings.js';
import { count } from './plural.js';

export function migrateCommand(program: Command): void {
  program.command('migrate')
    .description("Move an owner's data to other stores (resumable), or confirm/abort a move")
    .requiredOption('--user <id>', 'the owner whose data moves')
    .option('--records <url>', 'target record store, e.g. postgres://… or flatfile:./data/alice (default: keep)')
    .option('--blobs <url>', 'target blob store, e.g. s3://bucket?… (default: keep)')
    .option('--confirm', 'delete the data from the stores the owner left')
    .option('--abort', 'give up a move under way; the owner stays where they are')
    .action(async (opts: { user: string; records?: string; blobs?: string; confirm?: boolean; abort?: boolean }) => {
      // Loaded on use: `freehold serve` shares this module graph and never migrates.
      const { abortMigration, confirmMigration, migrateOwner } = await import('../core/migration/migrate.js');
      const { Progress } = await import('./progress.js');
      await withServices(async (s) => {
        if (!(await s.accounts.get(opts.user))) throw new Error(`no user ${opts.user}`);
        const moving = opts.records !== undefined || opts.blobs !== undefined;
        const given = [opts.records !== undefined && '--records', opts.blobs !== undefined && '--blobs', opts.confirm && '--confirm', opts.abort && '--abort']
          .filter((f): f is string => typeof f === 'string');
        if ((opts.abort && opts.confirm) || ((opts.abort || opts.confirm) && moving)) {
          throw new Error(`${given.join(' and ')} cannot go together: give one of a target (--records and/or --blobs), --confirm or --abort`);
        }
        if (!moving && !opts.abort && !opts.confirm && !s.stores.storageOf(opts.user).target) {
          throw new Error('say where to move: --records <url> and/or --blobs <url> (or --confirm, --abort)');
        }
        if (opts.abort) {
          const removed = await abortMigration(s.stores, opts.user);
          process.stdout.write(`move aborted; ${opts.user} stays on ${maskStoreUrl(s.stores.storageOf(opts.user).records)}\n`
            + `deleted what the move had copied: ${count(removed.tables, 'table')} and ${count(removed.files, 'file')}\n`);
          return;
        }
        if (opts.confirm) {
          const r = await confirmMigration(s.stores, opts.user);
          process.stdout.write(`deleted ${count(r.tables, 'table')} and ${count(r.files, 'file')} from the previous stores\n`);
          return;
        }
        const current = s.stores.storageOf(opts.user);
        const target = { records: opts.records ?? current.target?.records ?? current.records, blobs: opts.blobs ?? current.target?.blobs ?? current.blobs };
        const progress = new Progress();
        try {
          const r = await interruptible(() => migrateOwner(s.stores, opts.user, target, {
            propagationMs: 2 * s.config.storagePollMs + 500,
            backupBlobs: s.config.backupBlobs,
            onProgress: (p) => progress.update(p.phase + ('table' in p && p.table ? ` ${p.table}` : ''), p.done, p.total),
          }), () => {
            progress.stop();
            const frozen = s.stores.storageOf(opts.user).state === 'migrating';
            return `move of ${opts.user} interrupted${frozen ? ` while ${opts.user} is read-only` : ''}. `
              + `Run the same command again to finish it, or give it up with: freehold migrate --user ${opts.user} --abort`;
          });
          progress.stop();
          process.stdout.write(`moved ${opts.user}: ${count(r.records, 'record')} in ${count(r.tables, 'table')} and ${count(r.files, 'file')}, verified\n`
            + `now on ${maskStoreUrl(r.to.records)} + ${maskStoreUrl(r.to.blobs)}\n`
            + `the old copy is kept; when you have checked everything: freehold migrate --user ${opts.user} --confirm\n`);
        } finally {
          progress.stop();
        }
      });
    });
}
