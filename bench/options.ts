/**
 * Every knob of `npm run bench`, from the environment. BENCH_QUICK=1 shrinks
 * everything to a smoke run (seconds, not minutes); explicit variables still win.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.dirname(BENCH_DIR);

export type Backend = 'sqlite' | 'flatfile' | 'postgres';

export interface Options {
  quick: boolean;
  /** Seconds of load per row. */
  seconds: number;
  connections: number[];
  /** Records seeded for the query rows (sqlite and postgres). */
  seed: number;
  /** The flat-file store writes one file per record: it gets a smaller seed. */
  flatfileSeed: number;
  /**
   * Records for the "indexed query over 1M records" target: sqlite and postgres get a
   * second target seeded this big, for the indexed query alone (store level and HTTP at
   * one connection). 0, or a `seed` at least this big, skips it.
   */
  bigSeed: number;
  backends: Backend[];
  peer: boolean;
  /** Size of each file in the upload/download rows. */
  fileMb: number;
  /** Records and files in the owner that export/import/migrate move. */
  portabilityRecords: number;
  portabilityFiles: number;
  /** Run targets from a compiled copy (as `npm start` does) or through tsx. */
  compiled: boolean;
  /** freehold's log level in the targets; `info` (the default) writes a line per request, as `npm start` does. */
  logLevel: string;
  outDir: string;
  /** A folder for per-response latency traces of every load row (trace.ts); null: none kept. */
  traceDir: string | null;
}

const env = process.env;
const num = (name: string, fallback: number): number => {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, not ${JSON.stringify(v)}`);
  return n;
};
const flag = (name: string, fallback: boolean): boolean => {
  const v = env[name];
  return v === undefined || v === '' ? fallback : !/^(0|false|off|no)$/i.test(v);
};

export function readOptions(): Options {
  const quick = flag('BENCH_QUICK', false);
  const seed = num('BENCH_SEED', quick ? 500 : 100_000);
  const backends = (env.BENCH_BACKENDS ?? 'sqlite,flatfile,postgres').split(',').map((s) => s.trim()).filter(Boolean);
  for (const b of backends) if (!['sqlite', 'flatfile', 'postgres'].includes(b)) throw new Error(`BENCH_BACKENDS: unknown backend ${b}`);
  return {
    quick,
    seconds: num('BENCH_SECONDS', quick ? 1 : 5),
    connections: (env.BENCH_CONNECTIONS ?? (quick ? '1,8' : '1,8,32')).split(',').map(Number).filter((n) => n > 0),
    seed,
    flatfileSeed: num('BENCH_FLATFILE_SEED', Math.min(seed, quick ? 200 : 10_000)),
    bigSeed: num('BENCH_BIG_SEED', quick ? 0 : 1_000_000),
    backends: backends as Backend[],
    peer: flag('BENCH_PEER', !quick),
    fileMb: num('BENCH_FILE_MB', quick ? 1 : 10),
    portabilityRecords: num('BENCH_PORTABILITY_RECORDS', quick ? 300 : 50_000),
    portabilityFiles: num('BENCH_PORTABILITY_FILES', quick ? 2 : 5),
    compiled: flag('BENCH_COMPILED', !quick),
    logLevel: env.BENCH_LOG_LEVEL || 'info',
    outDir: path.resolve(env.BENCH_OUT ?? path.join(BENCH_DIR, 'results')),
    traceDir: env.BENCH_TRACE ? path.resolve(env.BENCH_TRACE) : null,
  };
}
