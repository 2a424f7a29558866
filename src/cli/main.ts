import { beginStartup } from './startup-mode.js';

// Before anything else is loaded: see startup-mode.ts.
beginStartup();

try {
  const { run } = await import('./program.js');
  await run(process.argv);
} catch (err: unknown) {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`freehold: ${message}\n`);
  process.exit(1);
}
