import { createRequire } from 'node:module';

/**
 * Media types by file name, through mime-types loaded at the first lookup: its
 * database is close to 1 MB of heap, and an idle server that has served no file
 * has no use for it. The require is synchronous, so callers stay synchronous.
 */

type MimeTypes = typeof import('mime-types');

let loaded: MimeTypes | undefined;

function mimeTypes(): MimeTypes {
  loaded ??= createRequire(import.meta.url)('mime-types') as MimeTypes;
  return loaded;
}

/** The media type for a file name or extension, or false when unknown. */
export function lookupType(nameOrExt: string): string | false {
  return mimeTypes().lookup(nameOrExt);
}

/** A full Content-Type (with charset where one applies) for a file name, type or extension, or false. */
export function contentTypeFor(nameOrType: string): string | false {
  return mimeTypes().contentType(nameOrType);
}

const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/;

/**
 * One plain `type/subtype`, lowercase and without parameters, from a type a client
 * sent; undefined when it is not exactly one (a list such as `image/png, text/javascript`,
 * whose last entry browsers would use, or anything malformed).
 */
export function plainMediaType(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.includes(',')) return undefined;
  const type = raw.split(';')[0]!.trim().toLowerCase();
  return MEDIA_TYPE.test(type) ? type : undefined;
}
