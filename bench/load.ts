/**
 * One load run with autocannon on loopback. Latencies are taken from autocannon's
 * per-response event (float ms), since its summary histogram rounds to whole
 * milliseconds and most rows here are well under one.
 */
import autocannon from 'autocannon';
import { Samples } from './stats.js';
import { RowTrace } from './trace.js';
import { startCpu, type CpuSources } from './cpu.js';

export interface LoadRow {
  /** Row family, e.g. "CEPS write"; with backend and connections it names the row. */
  name: string;
  backend: string;
  connections: number;
  reqPerSec: number;
  p50: number;
  p99: number;
  /** Non-2xx answers plus socket errors and timeouts. */
  errors: number;
  requests: number;
  /** Peak RSS of the target while this row ran, MB. */
  rssPeak?: number;
  /** CPU the server's process spent per answered request in this row, µs (cpu.ts). */
  cpuUs?: number;
  /** The same for the database's processes beside it (PostgreSQL), µs. */
  dbCpuUs?: number;
}

export const rowKey = (r: { name: string; backend: string; connections: number }): string => `${r.name} | ${r.backend} | ${r.connections}`;

export interface LoadSpec {
  name: string;
  backend: string;
  connections: number;
  seconds: number;
  /** A fixed number of requests instead of a duration (e.g. deletes of known ids). */
  amount?: number;
  opts: Omit<autocannon.Options, 'connections' | 'duration' | 'amount'>;
  /** Whose CPU to count per request (the server's pid, the database's processes). */
  cpu?: CpuSources;
}

export async function load(spec: LoadSpec, log: (s: string) => void): Promise<LoadRow> {
  log(`  ${spec.name} · ${spec.backend} · ${spec.connections} conn`);
  const samples = new Samples();
  const trace = new RowTrace();
  const cpu = startCpu(spec.cpu ?? {});
  const t0 = performance.now();
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({
      ...spec.opts,
      connections: spec.connections,
      ...(spec.amount !== undefined ? { amount: spec.amount } : { duration: spec.seconds }),
      timeout: 30,
    } as autocannon.Options, (err, result) => (err ? reject(err) : resolve(result)));
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      if (statusCode >= 200 && statusCode < 300) {
        samples.push(responseTime);
        trace.add(responseTime);
      }
    });
  });
  const lat = samples.summary();
  trace.done({ name: spec.name, backend: spec.backend, connections: spec.connections });
  // Our own clock: autocannon's `duration` is not the elapsed time of an `amount` run.
  const seconds = (performance.now() - t0) / 1000;
  const used = cpu.perRequest(lat.n + r.non2xx);
  return {
    name: spec.name, backend: spec.backend, connections: spec.connections,
    // 2xx answers per second: errors must not make a row look fast.
    reqPerSec: Math.round((lat.n / seconds) * 10) / 10,
    p50: lat.p50, p99: lat.p99,
    errors: r.errors + r.timeouts + r.non2xx,
    requests: lat.n,
    ...(used.server !== undefined ? { cpuUs: used.server } : {}),
    ...(used.database !== undefined ? { dbCpuUs: used.database } : {}),
  };
}
