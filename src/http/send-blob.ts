import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { BlobInfo, BlobRange } from '../storage/types.js';
import { FreeholdError } from '../core/errors.js';
import { plainMediaType } from '../core/mime.js';

/**
 * Parses a single-range `Range: bytes=…` header against a size. Returns null for no
 * (or an ignorable) Range; throws RangeNotSatisfiable (416) for a range past the end.
 */
export function parseRange(header: string | undefined, size: number): BlobRange | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null; // malformed or multi-range: serve the whole file
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) throw new RangeNotSatisfiable(size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) throw new RangeNotSatisfiable(size);
  return { start, end };
}

export class RangeNotSatisfiable extends FreeholdError {
  constructor(size: number) {
    super('range_not_satisfiable', 'Range not satisfiable', { size });
  }
}

const INLINE_SAFE = /^(image\/(png|jpeg|gif|webp|avif)|video\/|audio\/|application\/pdf|text\/plain)/;
/** The MIME types browsers run as script (WHATWG's JavaScript MIME type list). */
const SCRIPT_TYPE = /^\s*(?:application\/(?:x-)?(?:java|ecma)script|text\/(?:x-)?(?:java|ecma)script(?:1\.[0-5])?|text\/(?:jscript|livescript))\s*(?:;|$)/i;

export interface SendBlobOptions {
  /** Serve as a download (Content-Disposition: attachment) unless the type is safe to show inline. */
  download?: string;
  cacheControl?: string;
  contentType?: string;
}

/** Sends a blob with ETag/304, Accept-Ranges and 206 for ranges. `stream` may be null for HEAD. */
export function sendBlob(request: FastifyRequest, reply: FastifyReply, info: BlobInfo, stream: Readable | null,
  range: BlobRange | null, opts: SendBlobOptions = {}): FastifyReply {
  const etag = `"${info.etag}"`;
  let type = opts.contentType ?? info.contentType ?? 'application/octet-stream';
  // A user file is data: sent as a script type (the uploader chose it), a page of the same
  // origin could run it, past its CSP ('self'). As bytes, with nosniff, it never runs.
  if (opts.download !== undefined) {
    const plain = plainMediaType(type);
    type = plain === undefined || SCRIPT_TYPE.test(plain) ? 'application/octet-stream' : plain;
  }
  reply.header('ETag', etag);
  reply.header('Accept-Ranges', 'bytes');
  reply.header('Cache-Control', opts.cacheControl ?? 'private, no-cache');
  reply.header('Last-Modified', new Date(info.modified).toUTCString());
  if (opts.download !== undefined) {
    const inline = INLINE_SAFE.test(type);
    const name = encodeURIComponent(opts.download);
    reply.header('Content-Disposition', `${inline ? 'inline' : 'attachment'}; filename*=UTF-8''${name}`);
    // A user file must never run as a document on this origin, whatever its type.
    reply.header('Content-Security-Policy', "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox");
  }
  const inm = request.headers['if-none-match'];
  if (inm && inm.split(',').some((t) => t.trim() === etag || t.trim() === `W/${etag}`)) {
    stream?.destroy();
    return reply.code(304).send();
  }
  reply.type(type);
  if (range) {
    reply.code(206);
    reply.header('Content-Range', `bytes ${range.start}-${range.end}/${info.size}`);
    reply.header('Content-Length', String(range.end - range.start + 1));
  } else {
    reply.header('Content-Length', String(info.size));
  }
  if (request.method === 'HEAD' || !stream) {
    stream?.destroy();
    return reply.send();
  }
  return reply.send(stream);
}
