/**
 * CPU time spent by processes while a row runs, per request: the figure that moves
 * least with a shared machine's speed (a row's req/s and p99 follow how much of the two
 * cores the server gets; the CPU a request costs it hardly does). Linux only (/proc);
 * elsewhere rows simply carry no CPU figure.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on every Linux build that matters here). */
const TICKS_PER_SECOND = 100;

/** A process's user + system CPU so far, all its threads, in ms; undefined if it cannot be read. */
export function cpuMsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/**
 * User + system CPU so far of every process whose command name is `name` (e.g. all of a
 * PostgreSQL server's backends and helpers), in ms. Processes that end between the
 * listing and the read are left out, so a reading can fall back: take the difference
 * of two readings as a close estimate, not an exact count.
 */
export function cpuMsOfCommand(name: string): number | undefined {
  let total = 0;
  let seen = 0;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== name) continue;
      const ms = cpuMsOf(Number(entry));
      if (ms !== undefined) {
        total += ms;
        seen++;
      }
    } catch {
      // gone meanwhile
    }
  }
  return seen > 0 ? total : undefined;
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
  const db0 = sources.database ? cpuMsOfCommand(sources.database) : undefined;
  return {
    perRequest(requests) {
      const server1 = cpuMsOf(sources.server);
      const db1 = sources.database ? cpuMsOfCommand(sources.database) : undefined;
      const per = (a: number | undefined, b: number | undefined) =>
        (a !== undefined && b !== undefined && requests > 0 ? Math.round(((b - a) * 1000) / requests) : undefined);
      const server = per(server0, server1);
      const database = per(db0, db1);
      return { ...(server !== undefined ? { server } : {}), ...(database !== undefined ? { database: Math.max(0, database) } : {}) };
    },
  };
}
