/**
 * Runs long command-line work so that Ctrl-C (or SIGTERM) says where it left things:
 * `onInterrupt` tidies up what must not stay (synchronously: the process ends right
 * after) and returns the line to print. Exit status 130, as shells expect of Ctrl-C
 * (143 for SIGTERM).
 */
export async function interruptible<T>(work: () => Promise<T>, onInterrupt: () => string): Promise<T> {
  const handler = (signal: NodeJS.Signals) => {
    const message = onInterrupt();
    process.stderr.write(`\n${message}\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  try {
    return await work();
  } finally {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  }
}
