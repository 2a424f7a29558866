import type { Command } from 'commander';
import { createWriteStream, rmSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { withServices } from './context.js';
import { interruptible } from './interrupt.js';
import { assertUserId } from '../core/names.js';
import { mb, progressReporter } from './archive-progress.js';
import { SERVER_VERSION } from '../version.js';
import { count } from './plural.js';

/**
 * `freehold export` and `freehold import`: one owner's everything as one zip (docs/export-format.md).
 * The zip code and the progress bar are imported when a command runs: `freehold serve`
 * loads this module too (commander lists every command) and should not hold them.
 */

function defaultOutName(user: string): string {
  return `freehold-export-${user}-${new Date().toISOString().slice(0, 10)}.zip`;
}

export function portabilityCommands(program: Command): void {
  program.command('export')
    .description("Write one user's records, files and apps into one zip archive")
    .requiredOption('--user <id>', 'the owner to export')
    .option('--out <file>', 'the archive to write (default freehold-export-<user>-<date>.zip)')
    .action(async (opts: { user: string; out?: string }) => {
      const user = assertUserId(opts.user);
      const out = path.resolve(opts.out ?? defaultOutName(user));
      // Written under a temporary name and renamed when complete: a failed export never
      // leaves a file that looks like a finished archive.
      const partial = `${out}.partial`;
      const { exportOwner } = await import('../core/portability/export.js');
      await withServices(async (s) => {
        if (!(await s.accounts.get(user))) throw new Error(`no user ${user}`);
        const progress = await progressReporter();
        const started = Date.now();
        try {
          const summary = await interruptible(
            () => exportOwner(s, user, createWriteStream(partial), progress.report, { serverVersion: SERVER_VERSION }),
            () => {
              progress.stop();
              rmSync(partial, { force: true });
              return `export of ${user} interrupted; nothing was written to ${out}`;
            });
          progress.stop();
          await rename(partial, out);
          const records = Object.values(summary.tables).reduce((n, c) => n + c, 0);
          const seconds = Math.max((Date.now() - started) / 1000, 0.001);
          process.stdout.write(`exported ${user}: ${count(records, 'record')} in ${count(Object.keys(summary.tables).length, 'table')}, ` +
            `${count(summary.files, 'file')}, ${count(summary.apps, 'app')}, ${mb(summary.bytes)} MB in ${seconds.toFixed(1)} s\n${out}\n`);
        } catch (err) {
          progress.stop();
          await rm(partial, { force: true });
          throw err;
        }
      });
    });

  program.command('import <file>')
    .description('Import an export archive for a user (verifies everything before writing; safe to repeat)')
    .requiredOption('--user <id>', 'the owner to import into (the account must exist)')
    .action(async (file: string, opts: { user: string }) => {
      const user = assertUserId(opts.user);
      const { importOwner } = await import('../core/portability/import.js');
      await withServices(async (s) => {
        const progress = await progressReporter();
        const started = Date.now();
        try {
          const r = await interruptible(() => importOwner(s, user, path.resolve(file), progress.report), () => {
            progress.stop();
            return `import into ${user} interrupted. What was written so far stays; run the same command again to finish it `
              + '(an import skips what is already there, so nothing is written twice).';
          });
          progress.stop();
          const records = Object.values(r.tables).reduce((n, c) => n + c, 0);
          const seconds = Math.max((Date.now() - started) / 1000, 0.001);
          process.stdout.write(`imported into ${user}: ${count(records, 'record')} in ${count(Object.keys(r.tables).length, 'table')}, ` +
            `${count(r.files, 'file')}, ${count(r.apps, 'app')} in ${seconds.toFixed(1)} s ` +
            `(${count(r.recordsWritten, 'record')}, ${count(r.blobsWritten, 'file')} and ${count(r.appFilesWritten, 'app file')} written, `
            + `${r.recordsUnchanged + r.blobsUnchanged + r.appFilesUnchanged} unchanged)\n`
            + (r.recordsNewerKept ? `${count(r.recordsNewerKept, 'record')} kept as here: changed since the archive was made (import never undoes newer changes)\n` : '')
            + (r.recordsSkipped ? `${count(r.recordsSkipped, 'permission grant')} left out: their apps are neither in the archive nor installed here\n` : ''));
        } catch (err) {
          progress.stop();
          throw err;
        }
      });
    });
}
