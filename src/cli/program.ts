import { Command } from 'commander';
import { serveCommand } from './serve.js';
import { userCommands } from './users.js';
import { appCommands } from './apps.js';
import { portabilityCommands } from './portability.js';
import { migrateCommand } from './migrate.js';
import { backupCommands } from './backup.js';
import { endStartup } from './startup-mode.js';
import { SERVER_VERSION } from '../version.js';

/** The `freehold` command line. Each sub-command lives in its own module. */
export async function run(argv: string[]): Promise<void> {
  const program = new Command();
  program.name('freehold').description('A personal server for CEPS apps').version(SERVER_VERSION).showHelpAfterError();
  // `serve` leaves start-up mode once it listens; every other command does its work outside it.
  program.hook('preAction', (_program, command) => {
    if (command.name() !== 'serve') endStartup();
  });
  serveCommand(program);
  userCommands(program);
  appCommands(program);
  portabilityCommands(program);
  migrateCommand(program);
  backupCommands(program);
  await program.parseAsync(argv);
}
