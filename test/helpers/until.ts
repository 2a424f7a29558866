import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `ok` every 10 ms until it holds, and fails the test after `ms`: a generous
 * bound for something that must happen eventually, never a claim about how fast.
 */
export async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !(await ok()); await sleep(10)) {
    if (Date.now() > end) assert.fail(`timed out waiting until ${what}`);
  }
}
