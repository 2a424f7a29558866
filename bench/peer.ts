/**
 * The peer: Community Solid Server 7 (the npm package), file backend, started here
 * as a child process on loopback with a temp root. Its config is CSS's own
 * `file-root.json` (open root, no accounts) with authorization swapped for
 * `allow-all` and the file locker for the in-memory one: the fastest setup its docs
 * allow for local testing, so the ratio is against the peer at its best.
 * Rows: PUT of a new small JSON resource (its "write") and GET of one (its "read").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type autocannon from 'autocannon';
import { smallBody } from './dataset.js';
import { load, type LoadRow } from './load.js';
import { freePort, peakRssDuring, rssOf, stop, type Rss } from './processes.js';
import type { Backends } from './backends.js';

export interface PeerResult {
  name: string;
  version?: string;
  rows: LoadRow[];
  idleRss?: Rss;
  startMs?: number;
  /** Why there are no rows, when there are none. */
  skipped?: string;
}

const PEER = 'Community Solid Server';

/** CSS's package folder, or null when the dev dependency is not installed. */
function cssPackage(): string | null {
  try {
    return path.dirname(createRequire(import.meta.url).resolve('@solid/community-server/package.json'));
  } catch {
    return null;
  }
}

function writeConfig(pkg: string, dir: string): string {
  const base = JSON.parse(readFileSync(path.join(pkg, 'config', 'file-root.json'), 'utf8')) as { '@context': string; import: string[] };
  const config = {
    '@context': base['@context'],
    import: base.import.map((i) => i
      .replace('css:config/ldp/authorization/webacl.json', 'css:config/ldp/authorization/allow-all.json')
      .replace('css:config/util/resource-locker/file.json', 'css:config/util/resource-locker/memory.json')),
    '@graph': [{ comment: 'freehold bench peer: file backend, open root, allow-all, in-memory locks. Loopback only, never real data.' }],
  };
  const file = path.join(dir, 'css-config.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

async function waitReady(base: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`CSS exited with ${child.exitCode}`);
    try {
      const res = await fetch(base, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status < 500) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`CSS did not answer within ${timeoutMs} ms`);
}

export async function runPeer(backends: Backends, connections: number[], seconds: number, log: (s: string) => void): Promise<PeerResult> {
  const pkg = cssPackage();
  if (!pkg) return { name: PEER, rows: [], skipped: '@solid/community-server is not installed (npm install)' };
  const version = (JSON.parse(readFileSync(path.join(pkg, 'package.json'), 'utf8')) as { version: string }).version;
  const dir = backends.tempDir('css');
  const root = path.join(dir, 'root');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}/`;
  const bin = path.join(pkg, 'bin', 'server.js');
  if (!existsSync(bin)) return { name: PEER, version, rows: [], skipped: `no ${bin}` };
  log(`  starting ${PEER} ${version} …`);
  const t0 = performance.now();
  let errText = '';
  const child = spawn(process.execPath, [bin, '-c', writeConfig(pkg, dir), '-f', root, '-p', String(port), '-b', base, '-l', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d: Buffer) => { errText = (errText + d.toString()).slice(-2000); });
  try {
    try {
      await waitReady(base, child, 180_000);
    } catch (err) {
      return { name: PEER, version, rows: [], skipped: `${(err as Error).message}: ${errText.trim().slice(-300)}` };
    }
    const startMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 1000));
    const idleRss = await rssOf(child);
    const rows: LoadRow[] = [];
    const run = async (name: string, c: number, opts: Omit<autocannon.Options, 'connections' | 'duration' | 'amount'>) => {
      const { result, peak } = await peakRssDuring(child, () => load({ name, backend: 'peer', connections: c, seconds, opts, cpu: { server: child.pid } }, log));
      rows.push({ ...result, ...(peak ? { rssPeak: Math.round(peak.rss * 10) / 10 } : {}) });
    };
    let i = 0;
    let created = 0;
    for (const c of connections) {
      await run('CSS PUT (create)', c, {
        url: base,
        requests: [{
          setupRequest: (req: autocannon.Request) => ({ ...req, method: 'PUT', path: `/bench/r${i}.json`, headers: { 'content-type': 'application/json' }, body: smallBody(i++) }),
          onResponse: (status: number) => { if (status < 300) created++; },
        }],
      });
      let j = 0;
      await run('CSS GET', c, {
        url: base,
        requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, method: 'GET', path: `/bench/r${(j++ * 7919) % Math.max(1, created)}.json` }) }],
      });
    }
    return { name: PEER, version, rows, idleRss, startMs };
  } finally {
    await stop(child);
  }
}
