import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import yazl from 'yazl';

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'apps');

export interface ZipEntry {
  name: string;
  data?: Buffer | string;
  mode?: number;
  dir?: boolean;
  /** false stores the bytes as they are (so a patch can reach them). */
  compress?: boolean;
}

/**
 * Builds a zip with yazl. yazl itself refuses hostile names, so tests write a
 * same-length placeholder and `patch` swaps the name bytes afterwards (file names
 * are outside every CRC), which is exactly what an attacker's tool would produce.
 */
export async function buildZip(entries: ZipEntry[], patch: Array<[string, string]> = []): Promise<string> {
  const zip = new yazl.ZipFile();
  for (const e of entries) {
    if (e.dir) zip.addEmptyDirectory(e.name, e.mode !== undefined ? { mode: e.mode } : {});
    else zip.addBuffer(Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data ?? ''), e.name, { ...(e.mode !== undefined ? { mode: e.mode } : {}), ...(e.compress === false ? { compress: false } : {}) });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream as AsyncIterable<Buffer>) chunks.push(c);
  let buf: Buffer = Buffer.concat(chunks);
  for (const [from, to] of patch) buf = replaceAll(buf, Buffer.from(from), Buffer.from(to));
  const file = path.join(zipDir(), 'app.zip');
  writeFileSync(file, buf);
  return file;
}

/** Folders of the zips built by this test process, removed when it exits. */
const zipDirs: string[] = [];

function zipDir(): string {
  if (zipDirs.length === 0) process.once('exit', () => zipDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const dir = mkdtempSync(path.join(tmpdir(), 'freehold-zip-'));
  zipDirs.push(dir);
  return dir;
}

function replaceAll(buf: Buffer, from: Buffer, to: Buffer): Buffer {
  if (from.length !== to.length) throw new Error('patches must keep lengths');
  let i = buf.indexOf(from);
  if (i < 0) throw new Error(`patch target ${from} not found`);
  while (i >= 0) {
    to.copy(buf, i);
    i = buf.indexOf(from, i + 1);
  }
  return buf;
}

/**
 * Rewrites the uncompressed size of one entry in the central directory, the size
 * readers trust: a "zip bomb" that declares little and inflates to much.
 */
export function lieAboutSize(zipPath: string, name: string, declared: number): void {
  const buf = readFileSync(zipPath);
  const nameBuf = Buffer.from(name);
  for (let i = 0; i + 46 < buf.length; i++) {
    if (buf.readUInt32LE(i) !== 0x02014b50) continue;
    const nameLen = buf.readUInt16LE(i + 28);
    if (buf.subarray(i + 46, i + 46 + nameLen).equals(nameBuf)) {
      buf.writeUInt32LE(declared, i + 24);
      writeFileSync(zipPath, buf);
      return;
    }
  }
  throw new Error(`no central directory entry for ${name}`);
}

/** Zips a fixture folder, optionally inside a wrapping folder as "compress folder" tools do. */
export async function zipFixture(name: string, opts: { wrap?: string; extra?: ZipEntry[]; replace?: Record<string, string> } = {}): Promise<string> {
  const root = path.join(FIXTURES, name);
  const entries: ZipEntry[] = [];
  const walk = (rel: string) => {
    for (const f of readdirSync(path.join(root, rel))) {
      const r = rel ? `${rel}/${f}` : f;
      if (statSync(path.join(root, r)).isDirectory()) walk(r);
      else entries.push({ name: (opts.wrap ? opts.wrap + '/' : '') + r, data: opts.replace?.[r] ?? readFileSync(path.join(root, r)) });
    }
  };
  walk('');
  return buildZip([...entries, ...(opts.extra ?? [])]);
}
