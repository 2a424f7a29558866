import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import { FreeholdError } from '../core/errors.js';
import { formatBytes } from '../core/sizes.js';

/**
 * Receives the multipart part `file` into a temp file (zip readers need random
 * access) as it arrives, never whole in memory, then runs `use` on it and removes
 * the file whatever happens. Over `maxBytes` → 413, and nothing is kept.
 */
export async function withUploadedFile<T>(request: FastifyRequest, what: string, maxBytes: number, use: (file: string) => Promise<T>): Promise<T> {
  if (!request.isMultipart()) throw new FreeholdError('bad_request', `Expected a multipart/form-data body with ${what} in \`file\``);
  const dir = await mkdtemp(path.join(tmpdir(), 'freehold-upload-'));
  try {
    const file = path.join(dir, 'upload');
    let received = false;
    for await (const part of request.parts({ limits: { fileSize: maxBytes, files: 1 } })) {
      if (part.type === 'field') continue;
      if (part.fieldname !== 'file' || received) {
        part.file.resume();
        continue;
      }
      await pipeline(part.file, createWriteStream(file));
      if (part.file.truncated) throw new FreeholdError('too_large', `${what[0]!.toUpperCase()}${what.slice(1)} is too large: at most ${formatBytes(maxBytes)}`);
      received = true;
    }
    if (!received) throw new FreeholdError('bad_request', 'No file part named "file" in the upload');
    return await use(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
