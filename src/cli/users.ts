import type { Command } from 'commander';
import { readStdin, withServices } from './context.js';

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
  user.command('passwd <id>').description('Set a password from standard input').option('--password-stdin').action(async (id: string) => {
    const password = await readStdin();
    await withServices(async (s) => {
      await s.accounts.setPassword(id, password);
      await s.sessions.destroyAllFor(id);
      process.stdout.write(`password changed for ${id}; its sessions were ended\n`);
    });
  });
}
