import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ownProcessStart, processRuns } from '../process-identity.js';

/**
 * Where a running `freehold serve` can be reached, kept in its data directory, so that
 * commands run beside it (`freehold app install`) print the address the server really
 * listens on: the CLI's own environment may lack the server's PORT or public URL.
 */
const FILE = 'serving.json';

interface Serving {
  pid: number;
  procStart?: string;
  url: string;
}

/** Records this process as serving `url` for `dataDir`; the returned function removes the record again. */
export function recordServingAddress(dataDir: string, url: string): () => void {
  const file = path.join(dataDir, FILE);
  const procStart = ownProcessStart();
  const mine: Serving = { pid: process.pid, ...(procStart ? { procStart } : {}), url };
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(mine) + '\n');
  renameSync(temp, file);
  return () => {
    // Another server started on the same directory since then wrote its own: leave that.
    if (readServing(file)?.pid !== process.pid) return;
    try {
      unlinkSync(file);
    } catch {
      // Already gone.
    }
  };
}

/** The address of a server running on `dataDir`, or undefined when none does (a record left by a killed one is ignored). */
export function servingAddress(dataDir: string): string | undefined {
  const serving = readServing(path.join(dataDir, FILE));
  return serving && serving.pid !== process.pid && processRuns(serving.pid, serving.procStart) ? serving.url : undefined;
}

function readServing(file: string): Serving | undefined {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as Partial<Serving>;
    if (typeof v.pid !== 'number' || !Number.isSafeInteger(v.pid) || v.pid <= 0 || typeof v.url !== 'string') return undefined;
    return { pid: v.pid, url: v.url, ...(typeof v.procStart === 'string' ? { procStart: v.procStart } : {}) };
  } catch {
    return undefined;
  }
}
