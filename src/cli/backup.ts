import type { Command } from 'commander';
import { withServices } from './context.js';
import { progressReporter } from './archive-progress.js';
import type { Services } from '../core/services.js';
import type { BackupService } from '../core/backup/service.js';
import { count } from './plural.js';

function backupsOf(s: Services): BackupService {
  if (!s.backups) throw new Error('no backup store: set FREEHOLD_BACKUP_BLOBS (e.g. s3://backups?endpoint=…) first');
  return s.backups;
}

export function backupCommands(program: Command): void {
  const backup = program.command('backup').description('Back owners up to the backup store, list and restore backups');
  backup.command('run')
    .description('Back up one owner now, or every owner')
    .option('--user <id>', 'only this owner')
    .action(async (opts: { user?: string }) => {
      await withServices(async (s) => {
        const b = backupsOf(s);
        const users = opts.user ? [opts.user] : (await s.accounts.list()).map((u) => u.userId);
        for (const user of users) {
          if (!(await s.accounts.get(user))) throw new Error(`no user ${user}`);
          process.stderr.write(`backing up ${user} …\n`);
          const progress = await progressReporter();
          try {
            const g = await b.run(user, progress.report);
            progress.stop();
            process.stdout.write(`${user}\t${g.name}\t${(g.size / 1024 / 1024).toFixed(1)} MB\n`);
          } finally {
            progress.stop();
          }
        }
      });
    });
  backup.command('list').requiredOption('--user <id>').description("An owner's backups, newest first")
    .action(async (opts: { user: string }) => {
      await withServices(async (s) => {
        if (!(await s.accounts.get(opts.user))) throw new Error(`no user ${opts.user}`);
        for (const g of await backupsOf(s).list(opts.user)) {
          const whose = g.earlierAccount ? '\tearlier account of this name' : '';
          process.stdout.write(`${g.name}\t${new Date(g.takenAt).toISOString()}\t${g.size} bytes${whose}\n`);
        }
      });
    });
  backup.command('restore')
    .description('Bring a backup back (the newest unless --name); verified whole before anything is written')
    .requiredOption('--user <id>')
    .option('--name <generation>', 'which backup (from `backup list`)')
    .option('--earlier-account', "allow a backup taken before this account was made (a removed account of the same name): only if it is the same person")
    .action(async (opts: { user: string; name?: string; earlierAccount?: boolean }) => {
      await withServices(async (s) => {
        if (!(await s.accounts.get(opts.user))) throw new Error(`no user ${opts.user}`);
        process.stderr.write(`restoring ${opts.user} …\n`);
        const progress = await progressReporter();
        let r;
        try {
          r = await backupsOf(s).restore(opts.user, opts.name, progress.report, { earlierAccount: opts.earlierAccount === true });
        } finally {
          progress.stop();
        }
        process.stdout.write(`restored ${opts.user} from ${r.generation}: ${count(r.recordsWritten, 'record')}, ${count(r.blobsWritten, 'file')} `
          + `and ${count(r.appFilesWritten, 'app file')} written, ${r.recordsUnchanged + r.blobsUnchanged + r.appFilesUnchanged} unchanged\n`);
      });
    });
}
