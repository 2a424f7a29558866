import type { Server } from 'node:http';
import { setFlagsFromString } from 'node:v8';

/**
 * Two V8 settings for the start of a process, undone once it starts its real work
 * (for `serve`: once it listens).
 *
 * Start-up loads a few hundred modules and builds the routes: a burst of allocation
 * in which most objects live for the whole process, and code that runs once.
 *
 * - V8 grows the young generation when many objects survive it, which they all do
 *   here; it reached its maximum (2 × 16 MB, all of it touched and resident) during
 *   start-up and V8 shrinks it again only when a later GC sees a low allocation rate,
 *   which an idle server does not trigger for a long time, sometimes never. A growth
 *   factor of 1 keeps it at its initial size: survivors move to the old generation
 *   sooner, where they were going anyway.
 * - The optimising compiler (TurboFan) picks up start-up code that loops (schema
 *   compilation, module set-up), compiles it on background threads and leaves the
 *   freed compile memory in those threads' malloc arenas, about 10 MB resident; the
 *   code it makes is never run again.
 *
 * Measured as bench/startup.ts does (RSS 2 s after the first /ceps/ping, fresh data
 * dir): 93 MB without either, 80–84 MB holding the growth only, 71 MB with both; 66 MB
 * once V8's memory reducer has run (75 MB without). Start-up is no slower. Both are
 * plain V8 flags that V8 reads each time it decides (grow the young generation,
 * optimise a function), so setting them back to V8's defaults restores request
 * handling as it was: the young generation grows under load and hot request code is
 * optimised (bench/tmp one.ts, read and write at 32 connections: same req/s).
 *
 * A flag the operator set on the command line or in NODE_OPTIONS is left alone.
 *
 * `serve` keeps TurboFan off for longer: until it has answered some traffic
 * (endStartupServing). An idle server still runs a little code now and then (the storage
 * registry's poll each second goes through a few Node internals), and V8 would
 * optimise one of those after anywhere from 13 s to over a minute: the first TurboFan
 * compile of the process touches about 3.4 MB of the compiler's own code in the node
 * binary, which then stays resident (measured: file-backed RSS 40.9 -> 44.3 MB, the
 * idle server's RSS from ~57 to ~61 MB). A personal server idles most of the time;
 * under load, the first requests run on V8's baseline code and TurboFan is back after
 * them.
 */

export interface HeldFlag {
  name: string;
  /** Set at start. */
  hold: string;
  /** V8's default, set back once start-up is over. */
  release: string;
}

const HELD: readonly HeldFlag[] = [
  { name: 'semi-space-growth-factor', hold: '--semi-space-growth-factor=1', release: '--semi-space-growth-factor=2' },
  { name: 'turbofan', hold: '--no-turbofan', release: '--turbofan' },
];

let held: readonly HeldFlag[] = [];

/**
 * The flags to hold: those the operator did not give to node (on the command line or
 * in NODE_OPTIONS; `_` or `-`, with or without `no`). `--jitless` counts as a
 * TurboFan setting: turning TurboFan back on under it would ask for executable
 * memory it forbids.
 */
export function flagsToHold(execArgv: readonly string[], nodeOptions: string): HeldFlag[] {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].map((a) => a.replace(/_/g, '-').split('=')[0]);
  return HELD.filter((f) => {
    // `--opt` is V8's older name for `--turbofan`.
    const names = f.name === 'turbofan' ? ['turbofan', 'opt', 'jitless'] : [f.name];
    return !given.some((flag) => names.some((n) => flag === `--${n}` || flag === `--no-${n}` || flag === `--no${n}`));
  });
}

/** Enters start-up mode. Call before the bulk of the program is imported. */
export function beginStartup(): void {
  held = flagsToHold(process.execArgv, process.env.NODE_OPTIONS ?? '');
  for (const f of held) setFlagsFromString(f.hold);
}

/** Leaves start-up mode; later calls do nothing. */
export function endStartup(): void {
  for (const f of held) setFlagsFromString(f.release);
  held = [];
}

/** Requests a server answers before TurboFan is turned back on (endStartupServing). */
export const WARM_UP_REQUESTS = 1000;

/**
 * Leaves start-up mode for a server that now listens: the young generation may grow
 * again at once; TurboFan comes back once `server` has received `requests` requests.
 */
export function endStartupServing(server: Server, requests = WARM_UP_REQUESTS): void {
  const optimiser = held.filter((f) => f.name === 'turbofan');
  for (const f of held) if (!optimiser.includes(f)) setFlagsFromString(f.release);
  held = optimiser;
  if (optimiser.length === 0) return;
  let seen = 0;
  const count = (): void => {
    if (++seen < requests) return;
    server.off('request', count);
    endStartup();
  };
  server.on('request', count);
}

/** The names of the flags still held (for tests). */
export function heldFlags(): string[] {
  return held.map((f) => f.name);
}
