import type { Command } from 'commander';
import { statSync } from 'node:fs';
import path from 'node:path';
import { withServices } from './context.js';
import { servingAddress } from './serving-address.js';
import { assertAppName } from '../core/names.js';
import { MAX_TOKEN_TTL_MS } from '../core/auth/tokens.js';
import { count } from './plural.js';

export function appCommands(program: Command): void {
  const app = program.command('app').description('Install and manage apps');
  app.command('install <path>')
    .description('Install or update an app from a zip file or a folder')
    .requiredOption('--user <id>', 'the owner to install it for')
    .action(async (source: string, opts: { user: string }) => {
      const full = path.resolve(source);
      const isDir = statSync(full, { throwIfNoEntry: false })?.isDirectory();
      if (isDir === undefined) throw new Error(`no such file or folder: ${source}`);
      await withServices(async (s) => {
        if (!(await s.accounts.get(opts.user))) throw new Error(`no user ${opts.user}`);
        // Loaded here, not at start-up: only this command draws a bar (the server never does).
        const { SingleBar, Presets } = await import('cli-progress');
        const bar = new SingleBar({ format: 'installing [{bar}] {value}/{total} files', hideCursor: true }, Presets.shades_classic);
        let started = false;
        const installed = await s.apps.install(opts.user, isDir ? { folder: full } : { zipPath: full }, (done, total) => {
          if (!process.stderr.isTTY) return;
          if (!started) { bar.start(total, 0); started = true; }
          bar.update(done);
        });
        if (started) bar.stop();
        process.stdout.write(`${installed.updated ? 'updated' : 'installed'} ${installed.appName} ${installed.version} for ${opts.user}\n`);
        for (const w of installed.warnings) process.stderr.write(`warning: ${w}\n`);
        // New permissions, and granted ones this update changed: nothing is granted until the owner decides.
        const declared = await s.permissions.list(opts.user, installed.appName);
        const toDecide = declared.filter((p) => !p.granted).map((p) => p.name);
        if (toDecide.length) process.stdout.write(`waiting for ${opts.user}'s decision (home page, "Permissions apps ask for"): ${toDecide.join(', ')}\n`);
        const lapsed = declared.filter((p) => p.lapsed).map((p) => p.name);
        if (lapsed.length) process.stdout.write(`allowed before, changed by this version, off until allowed again: ${lapsed.join(', ')}\n`);
        const running = servingAddress(s.config.dataDir);
        process.stdout.write(running
          ? `open it at ${running}/apps/${installed.appName}\n`
          : `open it at ${s.config.publicUrl}/apps/${installed.appName} once the server runs (freehold serve)\n`);
      });
    });
  app.command('list').requiredOption('--user <id>').description("List a user's apps").action(async (opts: { user: string }) => {
    await withServices(async (s) => {
      if (!(await s.accounts.get(opts.user))) throw new Error(`no user ${opts.user}`);
      for (const a of await s.apps.list(opts.user)) process.stdout.write(`${a.appName}\t${a.version}\n`);
    });
  });
  app.command('remove <app>').requiredOption('--user <id>').option('--delete-data', "also delete the app's records")
    .description('Remove an app').action(async (name: string, opts: { user: string; deleteData?: boolean }) => {
      await withServices(async (s) => {
        await s.apps.remove(opts.user, assertAppName(name), { deleteData: opts.deleteData === true });
        process.stdout.write(`removed ${name}\n`);
      });
    });
  app.command('kept').requiredOption('--user <id>')
    .description('List the data left by apps that are not installed (removed keeping their data, or used from elsewhere)')
    .action(async (opts: { user: string }) => {
      await withServices(async (s) => {
        for (const k of await s.apps.keptData(opts.user)) process.stdout.write(`${k.appName}\t${count(k.records, 'record')} in ${count(k.tables, 'table')}\n`);
      });
    });
  app.command('delete-data <app>').requiredOption('--user <id>')
    .description('Delete the data an app that is not installed left (see `app kept`)')
    .action(async (name: string, opts: { user: string }) => {
      await withServices(async (s) => {
        const k = await s.apps.deleteKeptData(opts.user, assertAppName(name));
        process.stdout.write(`deleted ${count(k.records, 'record')} in ${count(k.tables, 'table')} of ${k.appName}\n`);
      });
    });

  program.command('app-password <user> <app>')
    .description('Print a one-time app password for an app served elsewhere (trade it at POST /oauth/token)')
    .option('--days <n>', 'days until it expires', '30')
    .action(async (user: string, appName: string, opts: { days: string }) => {
      const days = Number(opts.days);
      if (!Number.isFinite(days) || days <= 0 || days > 365) throw new Error('--days must be between 1 and 365');
      await withServices(async (s) => {
        if (!(await s.accounts.get(user))) throw new Error(`no user ${user}`);
        const ttl = Math.min(days * 24 * 3600 * 1000, MAX_TOKEN_TTL_MS);
        await s.apps.admitAccess(user, assertAppName(appName, true));
        const { password } = await s.tokens.issueAppPassword(user, appName, ttl, true);
        process.stdout.write(password + '\n');
      });
    });
}
