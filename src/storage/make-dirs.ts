import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * `mkdir -p` for the roots an operator configures (data directory, store roots), made
 * one level at a time. Node's own `{ recursive: true }` loops for ever, at full CPU,
 * under a parent that refuses new entries with ENOENT (`/proc/nope/x`): a mistyped
 * setting would hang start-up instead of failing. Here each level is made once, and any
 * refusal is thrown with the path it concerns.
 */
export function makeDirs(dir: string, mode?: number): void {
  const full = path.resolve(dir);
  const missing: string[] = [];
  for (let at = full; ; at = path.dirname(at)) {
    const kind = kindOf(at);
    if (kind === 'directory' || path.dirname(at) === at) break; // the file system's root: always there
    if (kind === 'other') throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${full}' (${at} is something else)`), { code: 'ENOTDIR', path: at });
    missing.push(at);
  }
  for (const at of missing.reverse()) {
    try {
      mkdirSync(at, mode === undefined ? undefined : { mode });
    } catch (err) {
      // Made meanwhile by someone else: fine, as long as it is a directory.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || kindOf(at) !== 'directory') throw err;
    }
  }
}

function kindOf(p: string): 'directory' | 'other' | 'missing' {
  try {
    return statSync(p).isDirectory() ? 'directory' : 'other';
  } catch {
    return 'missing';
  }
}
