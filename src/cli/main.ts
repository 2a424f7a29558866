import { Command } from 'commander';
import { serveCommand } from './serve.js';
import { userCommands } from './users.js';
import { appCommands } from './apps.js';
import { portabilityCommands } from './portability.js';
import { migrateCommand } from './migrate.js';
import { backupCommands } from './backup.js';

/** The `freehold` command line. Each sub-command lives in its own module. */
const program = new Command();
program.name('freehold').description('A personal server for CEPS apps').showHelpAfterError();
serveCommand(program);
userCommands(program);
appCommands(program);
portabilityCommands(program);
migrateCommand(program);
backupCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`freehold: ${message}\n`);
  process.exit(1);
});
