import { beginStartup } from './startup-mode.js';

// Before anything else is loaded: see startup-mode.ts.
beginStartup();

/**
 * `freehold` and `freehold serve` (no options: serve reads the environment) start the
 * server without building the whole command line, whose parser pulls in modules
 * (child_process and the cluster machinery among them) a running server never uses
 * and would hold in memory for its lifetime. Anything else, `--help` included, goes
 * through the full command line.
 */
function isPlainServe(args: string[]): boolean {
  return args.length === 0 || (args.length === 1 && args[0] === 'serve');
}

try {
  if (isPlainServe(process.argv.slice(2))) {
    await (await import('./serve.js')).serve();
  } else {
    const { run } = await import('./program.js');
    await run(process.argv);
  }
} catch (err: unknown) {
  const message = err instanceof Error ? err.message : String(err);
  // A refusal that lists its reasons (a bad app package's problems) shows each one.
  const details = (err as { details?: unknown } | null)?.details;
  const reasons = Array.isArray(details) ? details.filter((d): d is string => typeof d === 'string') : [];
  process.stderr.write(`freehold: ${message}\n${reasons.map((r) => `  - ${r}\n`).join('')}`);
  process.exit(1);
}
