import { readFileSync } from 'node:fs';

/**
 * Telling whether a process recorded in a file (a lock's holder, a running server)
 * still runs. A pid alone is not enough: after a crash or reboot the number may belong
 * to another process. On Linux the process's start time (clock ticks since boot) tells
 * them apart; elsewhere only the pid is checked.
 */

/** Fields 3 and 22 of /proc/<pid>/stat (state; start time after boot, in clock ticks); undefined off Linux. */
export function processStat(pid: number): { state: string; start: string | undefined } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0]!, start: fields[19] };
  } catch {
    return undefined;
  }
}

/** This process's start time, to be written beside its pid; undefined off Linux. */
export function ownProcessStart(): string | undefined {
  return processStat(process.pid)?.start;
}

/**
 * Whether the process `pid`, started at `procStart` (when known), still runs as far as
 * this machine can tell. A zombie counts as ended: it does nothing more.
 */
export function processRuns(pid: number, procStart?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: it runs, as another user.
  }
  const stat = processStat(pid);
  if (stat?.state === 'Z' || stat?.state === 'X') return false;
  return !(procStart && stat?.start && stat.start !== procStart);
}
