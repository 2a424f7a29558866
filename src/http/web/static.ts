import { createReadStream, existsSync, realpathSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { contentTypeFor } from '../../core/mime.js';

/**
 * A tiny static file server for the owner's pages and the client library.
 * Small on purpose: the files are few and tiny, so a whole plugin (and its
 * directory listings, dotfile options, range requests) buys nothing but surface.
 */

/** The CSP of every page we serve (and, harmlessly, every asset). No inline code anywhere. */
export const PAGE_CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
  "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'", "object-src 'none'",
].join('; ');

/**
 * The repository folder holding `web/pages`, found by walking up from this module,
 * so the same code works from `src/` (tsx) and from `dist/src/` (compiled).
 */
export function findWebRoot(from: string = path.dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(path.join(dir, 'web', 'pages'))) return path.join(dir, 'web');
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`No web/pages folder above ${from}`);
    dir = parent;
  }
}

/** A folder whose files may be served. Its real path is fixed once, so symlinks cannot lead out. */
export class StaticFolder {
  private readonly realRoot: string | null;

  constructor(readonly root: string) {
    // The folder may not exist yet (web/lib is written separately): serve 404s until it does.
    this.realRoot = existsSync(root) ? realpathSync(root) : null;
  }

  /**
   * The real path of a servable regular file at `relative` (already URL-decoded by
   * the router), or null. Refuses empty, dot and dot-dot segments, hidden files,
   * backslashes and control characters before touching the disk, then checks the
   * resolved real path is still inside the folder.
   */
  async resolve(relative: string): Promise<{ file: string; size: number; mtimeMs: number } | null> {
    if (!this.realRoot || relative.length === 0 || relative.length > 500) return null;
    if (/[\u0000-\u001f\u007f\\]/.test(relative)) return null;
    const segments = relative.split('/');
    if (segments.some((s) => s === '' || s.startsWith('.'))) return null;
    try {
      const file = await realpath(path.join(this.realRoot, ...segments));
      if (!file.startsWith(this.realRoot + path.sep)) return null;
      const st = await stat(file);
      return st.isFile() ? { file, size: st.size, mtimeMs: st.mtimeMs } : null;
    } catch {
      return null;
    }
  }
}

export function contentTypeOf(file: string): string {
  return contentTypeFor(path.extname(file)) || 'application/octet-stream';
}

/** Weak validator from size and mtime: cheap, and changes whenever the file does. */
function etagOf(size: number, mtimeMs: number): string {
  return `W/"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`;
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((t) => {
    const v = t.trim();
    return v === '*' || v.replace(/^W\//, '') === bare;
  });
}

export interface SendOptions {
  /**
   * `revalidate`: assets, cacheable but checked each time (their URLs carry no
   * version). `no-store`: pages, whose answer depends on who is signed in.
   */
  cache: 'revalidate' | 'no-store';
}

/** Sends a resolved file with its content type, CSP and ETag, answering 304 when the client has it. */
export function sendFile(
  request: FastifyRequest, reply: FastifyReply,
  found: { file: string; size: number; mtimeMs: number }, opts: SendOptions,
): FastifyReply {
  reply.header('Content-Security-Policy', PAGE_CSP);
  if (opts.cache === 'no-store') {
    reply.header('Cache-Control', 'no-store');
  } else {
    const etag = etagOf(found.size, found.mtimeMs);
    reply.header('ETag', etag).header('Cache-Control', 'no-cache');
    if (matchesEtag(request.headers['if-none-match'], etag)) return reply.code(304).send();
  }
  return reply
    .type(contentTypeOf(found.file))
    .header('Content-Length', found.size)
    .send(createReadStream(found.file));
}
