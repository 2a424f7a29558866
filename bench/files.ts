/**
 * File rows: FEPS upload (multipart PUT) and download (GET of the stored file) of
 * one large file, one connection, as MB/s. Uploads go through autocannon, the body
 * built once and resent, so the load generator does no per-request work beyond the
 * socket. Downloads go through Node's own HTTP client, which drops the bytes as they
 * come: autocannon parses every response body and topped out near 60 MB/s on this
 * machine, where curl and a plain Node client fetch the same file at 300–800 MB/s,
 * so the row measured the load generator, not the server.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { APP } from './dataset.js';
import { load, type LoadRow } from './load.js';
import { Samples } from './stats.js';
import type { CepsTarget } from './ceps.js';

const AFTER_UPLOADS_MS = 1000;

export interface FileRow {
  name: 'file upload' | 'file download';
  backend: string;
  sizeMb: number;
  mbPerSec: number;
  p50: number;
  errors: number;
  requests: number;
}

function multipartBody(fileName: string, bytes: Buffer): { body: Buffer; contentType: string } {
  const boundary = `----freeholdbench${randomBytes(8).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="options"\r\n\r\n${JSON.stringify({ fileName })}\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${fileName}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  return { body: Buffer.concat([head, bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]), contentType: `multipart/form-data; boundary=${boundary}` };
}

export async function runFiles(t: CepsTarget, sizeMb: number, seconds: number, log: (s: string) => void): Promise<FileRow[]> {
  // Random bytes: incompressible, like the photos and videos people upload.
  const bytes = randomBytes(Math.round(sizeMb * 1024 * 1024));
  const fileName = 'bench-large.bin';
  const { body, contentType } = multipartBody(fileName, bytes);
  const auth = { authorization: `Bearer ${t.token}` };
  const up = await load({
    name: 'file upload', backend: t.backend, connections: 1, seconds,
    opts: { url: `${t.base}/feps/upload/${APP}`, method: 'PUT', headers: { ...auth, 'content-type': contentType }, body },
  }, log);
  // autocannon ends the row with an upload in flight; one whose body had arrived is still
  // being stored. s3rver (the bench's S3) rewrites an object in place, so a download
  // meanwhile could read it half written: let that upload finish first.
  await new Promise((r) => setTimeout(r, AFTER_UPLOADS_MS));
  log(`  file download · ${t.backend} · 1 conn`);
  const down = await downloads(`${t.base}/feps/userfiles/${APP}/bench/${fileName}`, auth, bytes.length, seconds);
  const row = (name: FileRow['name'], r: typeof up): FileRow => ({
    name, backend: t.backend, sizeMb, mbPerSec: Math.round(r.reqPerSec * sizeMb * 10) / 10, p50: r.p50, errors: r.errors, requests: r.requests,
  });
  return [row('file upload', up), row('file download', down)];
}

/**
 * GETs `url` over one kept-alive connection, one request after another, for
 * `seconds`, dropping the bytes as they come. A transfer counts when it answers 200
 * with exactly `size` bytes; anything else is an error.
 */
async function downloads(url: string, headers: Record<string, string>, size: number, seconds: number): Promise<LoadRow> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const samples = new Samples();
  let errors = 0;
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  try {
    while (performance.now() < until) {
      const start = performance.now();
      const ok = await new Promise<boolean>((resolve) => {
        const req = http.get(url, { headers, agent }, (res) => {
          let got = 0;
          res.on('data', (chunk: Buffer) => { got += chunk.length; });
          res.on('end', () => resolve(res.statusCode === 200 && got === size));
          res.on('error', () => resolve(false));
          res.on('close', () => resolve(false)); // cut short: 'end' never came (a settled promise ignores this)
        });
        req.on('error', () => resolve(false));
      });
      if (ok) samples.push(performance.now() - start);
      else errors++;
    }
  } finally {
    agent.destroy();
  }
  const lat = samples.summary();
  const elapsed = (performance.now() - t0) / 1000;
  return {
    name: 'file download', backend: '', connections: 1,
    reqPerSec: Math.round((lat.n / elapsed) * 10) / 10, p50: lat.p50, p99: lat.p99, errors, requests: lat.n,
  };
}
