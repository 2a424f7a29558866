import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { FreeholdError } from '../../core/errors.js';
import { ownProcessStart, processRuns } from '../../process-identity.js';
import { FILE_MODE, isErrno } from './fsutil.js';

/**
 * One process per flat-file root. The store's locks, caches and journals live in the
 * process that opened it, so a second process on the same root (a `freehold user add`
 * or `import` beside a running `serve`) would append to the same journals and could
 * damage the data. The first process to open a root writes `<root>/_lock.json` (its pid,
 * host, start time and command line); another process finding it there, held by a
 * process that still runs, refuses to open the root and says who holds it.
 *
 * A lock left by a process that died (`kill -9`, a crash, a power loss) is taken over:
 * its pid no longer runs, or, on Linux, runs with another start time (the pid was
 * reused). The name cannot be an owner's folder: owner names with a leading `_` are
 * escaped (`%5F…`).
 *
 * Within one process the lock is counted, so stores reopened or probed in the same
 * process (tests, `migrate`'s same-store probe) behave as before.
 */
export const LOCK_FILE = '_lock.json';

export interface LockHolder {
  pid: number;
  host: string;
  /** When the process took the lock (ISO), for people reading the file. */
  since: string;
  /** The process's start time in clock ticks since boot (Linux /proc), to tell a reused pid. */
  procStart?: string;
  command: string;
}

const heldHere = new Map<string, number>();

/** Takes the root's lock (or counts one more use of it in this process); the returned function gives it back. */
export function lockRoot(root: string): () => void {
  const path = join(root, LOCK_FILE);
  const count = heldHere.get(path);
  if (count !== undefined) heldHere.set(path, count + 1);
  else {
    acquire(path);
    heldHere.set(path, 1);
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const left = (heldHere.get(path) ?? 1) - 1;
    if (left > 0) {
      heldHere.set(path, left);
      return;
    }
    heldHere.delete(path);
    try {
      if (readHolder(path)?.pid === process.pid) unlinkSync(path);
    } catch {
      // Already gone: nothing to give back.
    }
  };
}

function acquire(path: string): void {
  const mine = JSON.stringify(ownHolder(), null, 2) + '\n';
  // Written whole under a private name, then linked into place: link fails if the lock
  // exists, so two processes can never both create it, and no one reads half a file.
  const staged = `${path}.${process.pid}.${randomBytes(6).toString('hex')}`;
  const fd = openSync(staged, 'wx', FILE_MODE);
  try {
    writeSync(fd, mine);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        linkSync(staged, path);
        return;
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
      const text = readText(path);
      if (text === null) continue; // removed meanwhile: try again
      const holder = parseHolder(text);
      if (holder && holdsStill(holder)) throw inUse(path, holder);
      setAsideIfUnchanged(path, text);
    }
    throw new FreeholdError('unavailable', `Could not take the flat-file root's lock ${path}: other processes keep changing it`);
  } finally {
    try { unlinkSync(staged); } catch { /* linked or not, the staged name goes */ }
  }
}

/**
 * Moves a dead holder's lock aside, unless another process replaced it in the meantime
 * (then the replacement is put back, and the caller looks again).
 */
function setAsideIfUnchanged(path: string, text: string): void {
  const aside = `${path}.stale.${process.pid}.${randomBytes(6).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return;
    throw err;
  }
  if (readText(aside) === text) {
    unlinkSync(aside);
    return;
  }
  try {
    linkSync(aside, path);
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
  }
  unlinkSync(aside);
}

function ownHolder(): LockHolder {
  const procStart = ownProcessStart();
  return {
    pid: process.pid,
    host: hostname(),
    since: new Date().toISOString(),
    ...(procStart ? { procStart } : {}),
    command: process.argv.slice(1).join(' ').slice(0, 300),
  };
}

/**
 * Whether the process that wrote the lock still runs, as far as this machine can tell.
 * Its host name is not consulted: a container started again gets a new one, and its
 * old lock must not keep the server from starting. (Processes on two machines sharing
 * one root are not supported, and this lock cannot see them.)
 */
function holdsStill(holder: LockHolder): boolean {
  // Ours (a store of this process not closed, or, in a container, the pid 1 before a restart).
  if (holder.pid === process.pid) return false;
  return processRuns(holder.pid, holder.procStart);
}

function inUse(path: string, holder: LockHolder): FreeholdError {
  const where = holder.host === hostname() ? `process ${holder.pid}` : `process ${holder.pid} (host ${holder.host})`;
  return new FreeholdError('unavailable',
    `This flat-file root is in use by another freehold ${where} (${holder.command || 'unknown command'}, since ${holder.since}). ` +
    `Only one process may use a flat-file root: stop that one first. If it is not running, remove ${path}.`);
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
}

function readHolder(path: string): LockHolder | null {
  const text = readText(path);
  return text === null ? null : parseHolder(text);
}

/** The lock's holder, or null for a file that is not one (a lock of unknown shape counts as dead). */
function parseHolder(text: string): LockHolder | null {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    return typeof v.pid === 'number' && Number.isSafeInteger(v.pid) && v.pid > 0 && typeof v.host === 'string'
      ? { pid: v.pid, host: v.host, since: String(v.since ?? ''), command: String(v.command ?? ''), ...(typeof v.procStart === 'string' ? { procStart: v.procStart } : {}) }
      : null;
  } catch {
    return null;
  }
}
