import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { createServices } from '../core/services.js';
import { buildServer } from '../http/server.js';
import { endStartupServing } from './startup-mode.js';
import { housekeeping } from '../core/housekeeping.js';
import { recordServingAddress } from './serving-address.js';
import { makeDirs } from '../storage/make-dirs.js';

export function serveCommand(program: Command): void {
  program.command('serve', { isDefault: true })
    .description('Start the server (PORT, FREEHOLD_DATA and the rest from the environment)')
    .action(serve);
}

/** Starts the server from the environment and keeps it running until SIGINT or SIGTERM. */
export async function serve(): Promise<void> {
  const config = loadConfig();
  makeDirs(config.dataDir);
  const log = createLogger(config.logLevel);
  const services = await createServices(config, log);
  const app = await buildServer(services);
  await app.listen({ port: config.port, host: config.host });
  endStartupServing(app.server);
  const address = app.server.address();
  if (config.port === 0 && address && typeof address === 'object') {
    // An ephemeral port (PORT=0) is known only now; the default public URL follows it.
    config.publicUrl = config.publicUrl.replace(/:0$/, `:${address.port}`);
  }
  // Removed on every way out but a kill; one left by a killed server is seen to be stale.
  process.once('exit', recordServingAddress(config.dataDir, config.publicUrl));
  services.backups?.start();
  const sweep = () => void housekeeping(services).then(
    (swept) => { if (swept.tokens + swept.sessions > 0) log.info(swept, 'removed expired tokens and sessions'); },
    (err: unknown) => log.warn({ err }, 'housekeeping (staged uploads, expired tokens) failed'),
  );
  sweep();
  setInterval(sweep, 3600_000).unref();
  const setupToken = await services.accounts.issueSetupToken();
  const lines = [`freehold is running at ${config.publicUrl}`, `data: ${config.dataDir}`];
  if (setupToken) {
    lines.push('', 'No admin yet. Create the first account (this link works once, for 1 hour):',
      `  ${config.publicUrl}/setup?token=${setupToken}`,
      'or from a shell:  echo "<password>" | npx freehold user add <user-id> --password-stdin --admin');
  } else {
    lines.push(`Sign in at ${config.publicUrl}/signin`);
  }
  // A move killed after it made its owner read-only stays so until it is finished or given up.
  for (const owner of services.stores.ownersMoving()) {
    lines.push('', `${owner}'s data is read-only: a move to other storage is under way or was interrupted. If no \`freehold migrate\` runs,`,
      `  finish it: freehold migrate --user ${owner}   or give it up: freehold migrate --user ${owner} --abort`);
    log.warn({ owner }, 'owner read-only: a move is under way or was interrupted');
  }
  // Printed, not logged: the setup link is for the person at the console, never for log storage.
  process.stdout.write(lines.join('\n') + '\n');
  const stop = async () => {
    // A request still coming in or going out (a stalled upload, a long download to a slow
    // client) would hold the close for as long as it lasts. After the grace period its
    // connection is cut; the stores still close properly (commits flushed) after that.
    const cut = setTimeout(() => app.server.closeAllConnections(), config.stopGraceMs);
    cut.unref();
    // And the stores: one stuck on a statement that never ends (a database that stopped
    // answering, a lock held elsewhere) would keep the process up for good. Writes are
    // answered only once committed, so what is cut here was never promised.
    const deadline = stopDeadlineMs(config.stopGraceMs);
    const hard = setTimeout(() => {
      process.stderr.write(`freehold: the stores did not close within ${deadline} ms of the stop; exiting anyway\n`);
      process.exit(1);
    }, deadline);
    hard.unref();
    await app.close();
    clearTimeout(cut);
    await services.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

/** How long a stop may take in all: the requests' grace, then as long again and 5 s for the stores to close. */
export function stopDeadlineMs(graceMs: number): number {
  return 2 * graceMs + 5_000;
}
