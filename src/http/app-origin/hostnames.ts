import { createHash } from 'node:crypto';
import { isValidAppName, isValidUserId } from '../../core/names.js';

/**
 * Host names of app origins, both ways. Pure string work: no config, no store.
 *
 * Two schemes:
 *  - local (no apps domain): `<app>.<user>.localhost`. Read from the right: the last
 *    label is `localhost`, the one before it the user (user ids have no dots), the
 *    rest the app (app names are dotted).
 *  - domain: ONE label under the apps domain, so that one wildcard certificate
 *    (`*.apps.example.com`) covers every app. The label is the app name with `-`
 *    written `--` and `.` written `-`, then `---`, then the user id. Reversible
 *    because app segments never start or end with `-` (names.ts): a dot is never next
 *    to a dash, so every run of hyphens in an encoded app is one (a dot) or even (that
 *    many dashes, halved), never three; the first run of exactly three is the
 *    separator (the user id starts with a letter or digit). A label longer than 63 characters (DNS's limit),
 *    or one a browser would read as punycode (`xn--…`), is replaced by a hashed
 *    label `x` + 20 base32 characters of sha256(app|user), which the host store
 *    remembers (core/apps/host-labels.ts). Readable labels always hold `---` and
 *    hashed ones never hold `-`, so the two cannot be confused.
 *
 * DNS is case-insensitive and browsers lowercase host names, so the app name in a
 * host is always lowercase; callers match it to the installed app ignoring case
 * (two installed apps differing only in case cannot be told apart and are refused).
 */

export const LOCAL_PARENT = 'localhost';
const MAX_LABEL = 63;
const HASHED_LABEL = /^x[a-z2-7]{20}$/;
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** What a host names: an (owner, app) directly, or a hashed label to look up. */
export type ParsedAppHost =
  | { kind: 'named'; owner: string; app: string }
  | { kind: 'hashed'; label: string };

function base32(bytes: Buffer, chars: number): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length >= chars) break;
  }
  return out;
}

/** The hashed label of (owner, app): stable, lowercase, 21 characters. */
export function hashedLabel(owner: string, app: string): string {
  return 'x' + base32(createHash('sha256').update(`${app.toLowerCase()}|${owner}`).digest(), 20);
}

/** The readable single label, or null when it cannot be used (too long, punycode-like). */
function readableLabel(owner: string, app: string): string | null {
  const label = `${app.toLowerCase().replace(/-/g, '--').replace(/\./g, '-')}---${owner}`;
  return label.length > MAX_LABEL || label.startsWith('xn--') ? null : label;
}

/** The single DNS label naming (owner, app) under an apps domain; `hashed` when it must be looked up. */
export function domainLabel(owner: string, app: string): { label: string; hashed: boolean } {
  const readable = readableLabel(owner, app);
  return readable === null ? { label: hashedLabel(owner, app), hashed: true } : { label: readable, hashed: false };
}

/** The host name (without port) of an app's origin. */
export function appHostname(appsDomain: string, owner: string, app: string): string {
  if (appsDomain === '') return `${app.toLowerCase()}.${owner}.${LOCAL_PARENT}`;
  return `${domainLabel(owner, app).label}.${stripPort(appsDomain)}`;
}

export function stripPort(host: string): string {
  // IPv6 literals are never app hosts; a bracketed host is returned whole.
  if (host.startsWith('[')) return host;
  const colon = host.lastIndexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

/** Decodes the readable label's app part: a run of one hyphen is `.`, a run of 2k is k dashes. */
function decodeApp(encoded: string): string {
  return encoded.replace(/-+/g, (run) => (run.length === 1 ? '.' : '-'.repeat(run.length / 2)));
}

/** Where the separator `---` starts: the first run of exactly three hyphens, or -1. */
function separatorAt(label: string): number {
  const m = /(?<!-)---(?!-)/.exec(label);
  return m ? m.index : -1;
}

function named(owner: string, app: string): ParsedAppHost | null {
  return isValidUserId(owner) && isValidAppName(app) ? { kind: 'named', owner, app } : null;
}

/**
 * Reads a host name (no port, any case) as an app host, or null when it is not one.
 * `appsDomain` empty means the local scheme.
 */
export function parseAppHostname(appsDomain: string, hostname: string): ParsedAppHost | null {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (appsDomain === '') {
    const suffix = `.${LOCAL_PARENT}`;
    if (!host.endsWith(suffix)) return null;
    const labels = host.slice(0, -suffix.length).split('.');
    if (labels.length < 4) return null; // an app name has at least 3 segments, then the user
    return named(labels[labels.length - 1]!, labels.slice(0, -1).join('.'));
  }
  const suffix = `.${stripPort(appsDomain)}`;
  if (!host.endsWith(suffix)) return null;
  const label = host.slice(0, -suffix.length);
  if (label.includes('.')) return null;
  if (HASHED_LABEL.test(label)) return { kind: 'hashed', label };
  const sep = separatorAt(label);
  if (sep <= 0) return null;
  const parsed = named(label.slice(sep + 3), decodeApp(label.slice(0, sep)));
  // Only the canonical spelling of a name is its host: one origin per app, never two.
  if (parsed?.kind !== 'named' || readableLabel(parsed.owner, parsed.app) !== label) return null;
  return parsed;
}

/** Whether a host name lies under the parent of app hosts (an app host or a sibling that names nothing). */
export function isUnderAppsParent(appsDomain: string, hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  const parent = appsDomain === '' ? LOCAL_PARENT : stripPort(appsDomain);
  return host.endsWith(`.${parent}`);
}
