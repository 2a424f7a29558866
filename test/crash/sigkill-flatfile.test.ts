/**
 * The SIGKILL crash test (sigkill.test.ts) against the flat-file record store, whose
 * writes are acknowledged at the journal's fdatasync and made durable in place by a
 * background checkpoint: a kill lands between the two all the time, so recovery's
 * roll-forward is what every round exercises.
 */
process.env.CRASH_RECORDS = 'flatfile';
await import('./sigkill.test.js');
