/**
 * File rows: FEPS upload (multipart PUT) and download (GET of the stored file) of
 * one large file, one connection, as MB/s. The body is built once and resent, so
 * the load generator does no per-request work beyond the socket.
 */
import { randomBytes } from 'node:crypto';
import { APP } from './dataset.js';
import { load } from './load.js';
import type { CepsTarget } from './ceps.js';

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
  const down = await load({
    name: 'file download', backend: t.backend, connections: 1, seconds,
    opts: { url: `${t.base}/feps/userfiles/${APP}/bench/${fileName}`, headers: auth },
  }, log);
  const row = (name: FileRow['name'], r: typeof up): FileRow => ({
    name, backend: t.backend, sizeMb, mbPerSec: Math.round(r.reqPerSec * sizeMb * 10) / 10, p50: r.p50, errors: r.errors, requests: r.requests,
  });
  return [row('file upload', up), row('file download', down)];
}
