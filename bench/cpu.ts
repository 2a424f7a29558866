/**
 * CPU time spent by processes while a row runs, per request: a figure that moves with a
 * shared machine's speed much less than a row's req/s and p99 do (those follow how much
 * of the two cores the server gets). Linux only (/proc); elsewhere rows simply carry no
 * CPU figure.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on every Linux build that matters here). */
const TICKS_PER_SECOND = 100;

/** A process's command name and user + system CPU so far (all its threads, ms), from the text of /proc/<pid>/stat. */
function readStat(stat: string): { name: string; cpuMs: number } {
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  return { name: stat.slice(stat.indexOf('(') + 1, close), cpuMs: ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND };
}

/** A process's user + system CPU so far, all its threads, in ms; undefined if it cannot be read. */
export function cpuMsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return readStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).cpuMs;
  } catch {
    return undefined;
  }
}

/**
 * User + system CPU so far of each process whose command name is `name` (e.g. every
 * backend and helper of a PostgreSQL server), in ms by pid.
 */
export function cpuMsByPid(name: string): Map<number, number> {
  const out = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readStat(readFileSync(`/proc/${entry}/stat`, 'utf8'));
      if (stat.name === name) out.set(Number(entry), stat.cpuMs);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * The CPU the processes named in `after` spent since `before` was read: each one's own
 * difference, all of it for one started since. One that ended meanwhile took its time
 * with it (it is missing from `after`), so the figure can fall short, never go negative.
 */
export function cpuMsSince(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) total += Math.max(0, ms - (before.get(pid) ?? 0));
  return total;
}

/** What a row's CPU is read from: the server's process, and a database's processes beside it where there is one. */
export interface CpuSources {
  server?: number;
  /** The command name of the database's processes (`postgres`). */
  database?: string;
}

/** Readings taken before a row; `perRequest` turns them into µs per request after it. */
export function startCpu(sources: CpuSources): { perRequest(requests: number): { server?: number; database?: number } } {
  const server0 = cpuMsOf(sources.server);
  const db0 = sources.database ? cpuMsByPid(sources.database) : undefined;
  return {
    perRequest(requests) {
      const server1 = cpuMsOf(sources.server);
      const db1 = sources.database ? cpuMsByPid(sources.database) : undefined;
      const per = (ms: number | undefined) => (ms !== undefined && requests > 0 ? Math.round((ms * 1000) / requests) : undefined);
      const server = per(server0 !== undefined && server1 !== undefined ? server1 - server0 : undefined);
      const database = per(db0 && db1 && db1.size > 0 ? cpuMsSince(db0, db1) : undefined);
      return { ...(server !== undefined ? { server } : {}), ...(database !== undefined ? { database } : {}) };
    },
  };
}
