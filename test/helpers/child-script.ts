import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

/**
 * Runs `script` (an ES module; TypeScript imports go through tsx, paths from the repo
 * root) in a child process, for code that may block its thread for good: a blocked test
 * process could not fail, only hang. Fails with `hungMessage` if the child is still
 * running after `timeoutMs`, or if it exits non-zero; returns the JSON of its last line.
 */
export function runChildScript<T>(script: string, hungMessage: string, timeoutMs = 30_000): T {
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: process.cwd(), timeout: timeoutMs });
  assert.equal(run.signal, null, hungMessage);
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout.trim().split('\n').pop()!) as T;
}
