import { commandLogLevel, loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { createServices, type Services } from '../core/services.js';

/** Opens the configured stores for a one-shot command, and always closes them. */
export async function withServices<T>(fn: (services: Services) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const services = await createServices(config, createLogger(commandLogLevel()));
  try {
    return await fn(services);
  } finally {
    await services.close();
  }
}

export async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new Error('--password-stdin expects the password on standard input (e.g. echo ... | freehold ...)');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  // One trailing newline is how shells end input, not part of the password.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}
