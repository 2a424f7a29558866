import type { Command } from 'commander';
import { readStdin, withServices } from './context.js';
import { chooseOwnerStorage, maskStoreUrl } from '../core/storage-settings.js';
import { endSignIns } from '../core/auth/end-sign-ins.js';
import { count } from './plural.js';

export function userCommands(program: Command): void {
  const user = program.command('user').description('Manage accounts');
  user.command('add <id>')
    .description('Create a user; the password is read from standard input')
    .option('--password-stdin', 'read the password from standard input (required)')
    .option('--admin', 'make the user an admin')
    .action(async (id: string, opts: { passwordStdin?: boolean; admin?: boolean }) => {
      if (!opts.passwordStdin) throw new Error('pass --password-stdin and the password on standard input (never on the command line)');
      const password = await readStdin();
      await withServices(async (s) => {
        const u = await s.accounts.create(id, password, opts.admin === true);
        process.stdout.write(`created user ${u.userId}${u.isAdmin ? ' (admin)' : ''}\n`);
      });
    });
  user.command('list').description('List users').action(async () => {
    await withServices(async (s) => {
      for (const u of await s.accounts.list()) process.stdout.write(`${u.userId}${u.isAdmin ? '\tadmin' : ''}\n`);
    });
  });
  user.command('passwd <id>').description('Set a password from standard input').option('--password-stdin', 'read the password from standard input (required)')
    .action(async (id: string, opts: { passwordStdin?: boolean }) => {
      if (!opts.passwordStdin) throw new Error('pass --password-stdin and the password on standard input (never on the command line)');
      const password = await readStdin();
      await withServices(async (s) => {
        if (!(await s.accounts.get(id))) throw new Error(`no user ${id}`);
        await s.accounts.setPassword(id, password);
        await endSignIns(s.sessions, s.tokens, id);
        process.stdout.write(`password changed for ${id}; its sign-ins were ended\n`);
      });
    });
  user.command('remove <id>')
    .description('Remove a user with everything they stored here (records, files, apps, tokens); backups are kept')
    .option('--yes', 'really remove (required)')
    .action(async (id: string, opts: { yes?: boolean }) => {
      if (!opts.yes) throw new Error(`this deletes ${id} and all their data for good: add --yes to go ahead`);
      const { removeUser } = await import('../core/accounts/remove-user.js');
      await withServices(async (s) => {
        const r = await removeUser(s, id);
        process.stdout.write(`removed ${r.userId}: ${count(r.tables, 'table')} and ${count(r.files, 'file')} deleted\n`);
      });
    });
  user.command('2fa-reset <id>')
    .description("Turn off a user's two-factor sign-in (lost phone and recovery codes); they sign in with the password alone")
    .action(async (id: string) => {
      await withServices(async (s) => {
        if (!(await s.accounts.get(id))) throw new Error(`no user ${id}`);
        const had = await s.twoFactor.disable(id);
        process.stdout.write(had ? `two-factor sign-in turned off for ${id}\n` : `${id} had no two-factor sign-in\n`);
      });
    });
  user.command('storage <id>')
    .description("Show or set where a user's data is kept (set only before the user has data; otherwise use migrate)")
    .option('--records <url>', 'record store URL')
    .option('--blobs <url>', 'blob store URL')
    .action(async (id: string, opts: { records?: string; blobs?: string }) => {
      await withServices(async (s) => {
        if (!(await s.accounts.get(id))) throw new Error(`no user ${id}`);
        if (opts.records || opts.blobs) {
          await chooseOwnerStorage(s.stores, id, { ...(opts.records ? { records: opts.records } : {}), ...(opts.blobs ? { blobs: opts.blobs } : {}) },
            { chosenByOwner: false, allowPrivateAddresses: s.config.ownerStoragePrivate, backupBlobs: s.config.backupBlobs });
        }
        const st = s.stores.storageOf(id);
        process.stdout.write(`records: ${maskStoreUrl(st.records)}\nblobs:   ${maskStoreUrl(st.blobs)}\nstate:   ${st.state}\n`);
      });
    });
  user.command('quota <id>')
    .description("Show or set a user's storage quota (0: unlimited; --default: back to the host's default)")
    .option('--bytes <n>', 'bytes of records, files and apps')
    .option('--records <n>', 'number of records')
    .option('--default', "use the host's default quota")
    .action(async (id: string, opts: { bytes?: string; records?: string; default?: boolean }) => {
      await withServices(async (s) => {
        if (!(await s.accounts.get(id))) throw new Error(`no user ${id}`);
        const num = (v: string | undefined, name: string) => {
          if (v === undefined) return undefined;
          if (!/^\d+$/.test(v)) throw new Error(`--${name} must be a whole number`);
          return Number(v);
        };
        if (opts.default) await s.quota.setQuota(id, null);
        else if (opts.bytes !== undefined || opts.records !== undefined) {
          const q = await s.quota.quotaOf(id);
          await s.quota.setQuota(id, { bytes: num(opts.bytes, 'bytes') ?? q.bytes, records: num(opts.records, 'records') ?? q.records });
        }
        const [q, u] = await Promise.all([s.quota.quotaOf(id), s.quota.usage(id)]);
        const lim = (n: number) => (n === 0 ? 'unlimited' : String(n));
        process.stdout.write(`records: ${u.records} of ${lim(q.records)}\nbytes:   ${u.bytes} of ${lim(q.bytes)}\n`);
      });
    });
}
