import { BlockList, isIP, type LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';
import { lookup } from 'node:dns/promises';
import { lookup as lookupEach, type LookupAddress } from 'node:dns';
import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { parseS3Url, type S3Location } from '../storage/s3/url.js';
import { FreeholdError } from './errors.js';

/**
 * What an owner may point their own data at ("bring your own storage",
 * FREEHOLD_OWNER_STORAGE), and what no store setting may overlap.
 *
 * A store an owner chooses is opened by the server, with the server's network position
 * and, where the URL leaves them out, the server's credentials (AWS_* variables, PGPASSWORD,
 * ~/.pgpass). So an owner's URL must bring its own credentials, may reach only public
 * addresses (unless the admin allows the host's own network), and may not name files on
 * the host (PostgreSQL's sslcert, sslkey, sslrootcert parameters are paths it reads).
 * Without these rules an owner could write into the host's buckets, probe its private
 * network through the error messages, or make it read local files.
 */

/** PostgreSQL URL parameters an owner may set: the rest name host paths, sockets or other hosts. */
const OWNER_PG_PARAMS = new Set(['schema', 'pool', 'sslmode', 'application_name', 'connect_timeout']);
/** An owner's pool: enough for one person's traffic, not enough to use up the host's connections. */
const OWNER_PG_MAX_POOL = 20;

/** Addresses that are not on the public internet: loopback, private, link-local (cloud metadata), shared, reserved. */
const NOT_PUBLIC = (() => {
  const list = new BlockList();
  for (const [net, bits] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
    ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) {
    list.addSubnet(net, bits, 'ipv4');
  }
  // IPv4-mapped addresses (::ffff:a.b.c.d) are checked against the IPv4 rules by BlockList
  // itself; a rule for ::ffff:0:0/96 would match every IPv4 address. Below: unspecified,
  // loopback, IPv4-compatible (::a.b.c.d), NAT64 and 6to4 (which carry any IPv4 address,
  // private ones too), discard, site-local, unique local, link-local, multicast.
  for (const [net, bits] of [['::', 128], ['::1', 128], ['::', 96], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['2002::', 16], ['100::', 64],
    ['fec0::', 10], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) {
    list.addSubnet(net, bits, 'ipv6');
  }
  return list;
})();

export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return !NOT_PUBLIC.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** Every address a host name has (dns.lookup with `all`), or the resolver's error. */
export type ResolveAll = (hostname: string, callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

const systemResolver: ResolveAll = (hostname, callback) => lookupEach(hostname, { all: true, verbatim: true }, callback);

/**
 * A `lookup` for the connections of an owner's own stores while they must be on public
 * addresses (FREEHOLD_OWNER_STORAGE_PRIVATE off). checkOwnerChosenStore resolved the
 * names once, when the owner chose; a name under the owner's control can answer
 * otherwise later (DNS rebinding: a public address for the check, a private one such as
 * the cloud's metadata service for the connection), so each connection resolves again
 * and goes ahead only when every address is public. The error names the host, never
 * the addresses it had, as checkOwnerChosenStore's does.
 */
export function publicAddressesOnly(resolve: ResolveAll = systemResolver): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, (error, found) => {
      if (error) {
        callback(error, '', 0);
        return;
      }
      const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family ?? 0;
      const wanted = found.filter((a) => family === 0 || a.family === family);
      if (wanted.length === 0 || !found.every((a) => isPublicAddress(a.address))) {
        const refused = Object.assign(new Error(`${JSON.stringify(hostname)} is not a public address this server can reach: owners may use stores on the internet only (FREEHOLD_OWNER_STORAGE_PRIVATE)`), { code: 'ENOTPUBLIC' });
        callback(refused, '', 0);
        return;
      }
      if (options.all) callback(null, wanted);
      else callback(null, wanted[0]!.address, wanted[0]!.family);
    });
  };
}

function refuse(message: string): never {
  throw new FreeholdError('forbidden', message);
}

/** The hosts a store URL makes the server connect to ('' for a local socket), with what else the checks read. */
function hostsOf(url: string): { hosts: string[]; credentials: boolean; params: URLSearchParams | null; s3: S3Location | null } {
  if (/^s3:/i.test(url)) {
    const location = parseS3Url(url, {});
    // No endpoint: AWS S3 itself, a public service.
    const hosts = location.endpoint === undefined ? [] : [new URL(location.endpoint).hostname];
    return { hosts, credentials: location.credentials !== undefined, params: null, s3: location };
  }
  const u = new URL(url);
  return { hosts: [u.hostname], credentials: u.username !== '' && u.password !== '', params: u.searchParams, s3: null };
}

/** Checks an owner's own choice of store (the admin's choices are the admin's business). */
export async function checkOwnerChosenStore(url: string, allowPrivateAddresses: boolean): Promise<void> {
  let parsed: ReturnType<typeof hostsOf>;
  try {
    parsed = hostsOf(url);
  } catch (err) {
    throw new FreeholdError('bad_request', `Cannot open that storage: ${(err as Error).message}`);
  }
  if (!parsed.credentials) {
    refuse(parsed.s3
      ? 'Your own S3 store needs its own credentials in the URL (accessKeyId and secretAccessKey): the server\'s are not yours to use'
      : 'Your own PostgreSQL store needs its own user and password in the URL: the server\'s are not yours to use');
  }
  const l = parsed.s3;
  if (l) {
    // Virtual-host addressing sends requests to <bucket>.<endpoint host>, a name not checked here.
    if (l.endpoint !== undefined && !l.forcePathStyle) refuse('Your own S3 store with an endpoint is addressed by path: leave out forcePathStyle=false');
    // A path in the endpoint comes before the bucket in every request: it would name another bucket.
    if (l.endpoint !== undefined && new URL(l.endpoint).pathname !== '/') refuse('Your own S3 store\'s endpoint is a server address without a path (the bucket goes in s3://<bucket>)');
  }
  if (parsed.params) {
    for (const name of parsed.params.keys()) {
      if (!OWNER_PG_PARAMS.has(name)) refuse(`PostgreSQL URL parameter ${name} is not available for your own store (allowed: ${[...OWNER_PG_PARAMS].join(', ')})`);
    }
    const pool = Number(parsed.params.get('pool') ?? 0);
    if (pool > OWNER_PG_MAX_POOL) refuse(`pool may be at most ${OWNER_PG_MAX_POOL} for your own store`);
  }
  // Never a socket on the host (pg reads a host with a / as a Unix socket's folder), private addresses allowed or not.
  for (const host of parsed.hosts) {
    if (host === '' || safeDecode(host).includes('/')) refuse('Your own store must be on a network address, not a local socket');
  }
  if (allowPrivateAddresses) return;
  for (const host of parsed.hosts) {
    const name = host.replace(/^\[|\]$/g, '');
    const addresses = await addressesOf(name);
    // The same words for a name that does not resolve and for every address that is not
    // public: which it was (and so which names the host's resolver knows) is not the owner's to learn.
    if (addresses.length === 0 || !addresses.every(isPublicAddress)) {
      refuse(`${JSON.stringify(name)} is not a public address this server can reach: owners may use stores on the internet only (FREEHOLD_OWNER_STORAGE_PRIVATE)`);
    }
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** An address as one spelling: IPv4-mapped IPv6 (`::ffff:7f00:1`, `::ffff:127.0.0.1`) as the IPv4 address it is. */
function oneSpelling(address: string): string {
  const a = address.toLowerCase();
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted) return dotted[1]!;
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(a);
  if (!hex) return a;
  const [hi, lo] = [parseInt(hex[1]!, 16), parseInt(hex[2]!, 16)];
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** This machine's own addresses: any of them, loopback or unspecified reaches a server here. */
function isThisMachine(address: string): boolean {
  if (address === '0.0.0.0' || address === '::' || address === '::1' || /^127\./.test(address)) return true;
  return Object.values(networkInterfaces()).some((list) => (list ?? []).some((i) => oneSpelling(i.address) === address));
}

/** A server's addresses for comparing servers: each in one spelling, this machine's as one ('this machine'). */
async function serverAddressesOf(name: string): Promise<string[]> {
  return (await addressesOf(name)).map((a) => (isThisMachine(a) ? 'this machine' : a));
}

/** A host's addresses ([] when it does not resolve), each in one spelling. */
async function addressesOf(name: string): Promise<string[]> {
  if (isIP(name)) return [oneSpelling(name)];
  try {
    return (await lookup(name, { all: true, verbatim: true })).map((a) => oneSpelling(a.address));
  } catch {
    return [];
  }
}

/**
 * Where a blob store or flat-file root keeps its keys, for overlap checks; [] for
 * stores keyed by owner inside (SQLite, PostgreSQL). An S3 server is known by its port
 * and the addresses its name resolves to, so `localhost`, `127.0.0.1` and `0.0.0.0` are
 * one server; AWS (no endpoint, or an amazonaws.com one) is one server, its bucket
 * names global. An endpoint with a path may be a proxy's mount point or, to a plain
 * S3 server, a bucket (and the URL's bucket then a prefix): both readings are checked.
 */
type Place = { kind: 's3'; server: string; port: string; addresses: string[]; bucket: string; prefix: string } | { kind: 'path'; path: string };

async function placesOf(url: string): Promise<Place[]> {
  if (/^s3:/i.test(url)) {
    const l = parseS3Url(url, {});
    const e = l.endpoint === undefined ? null : new URL(l.endpoint);
    const host = e ? e.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase() : '';
    if (!e || /(^|\.)amazonaws\.com$/.test(host)) return [{ kind: 's3', server: 'aws', port: '', addresses: [], bucket: l.bucket, prefix: l.prefix }];
    const port = e.port || (e.protocol === 'https:' ? '443' : '80');
    const server = { kind: 's3' as const, server: host, port, addresses: await serverAddressesOf(host) };
    const out: Place[] = [{ ...server, bucket: l.bucket, prefix: l.prefix }];
    const path = e.pathname.split('/').filter((seg) => seg !== '');
    if (path.length > 0) out.push({ ...server, bucket: path[0]!, prefix: [...path.slice(1), l.bucket, ...(l.prefix ? [l.prefix] : [])].join('/') });
    return out;
  }
  // The whole rest, as the store opens it (a `?` is part of a folder's name there).
  const m = /^(fs|flatfile):(.+)$/i.exec(url);
  return m ? [{ kind: 'path', path: realPath(resolve(m[2]!)) }] : [];
}

/** The path with its existing part's symbolic links resolved: a link is the folder it points to. */
function realPath(path: string): string {
  let existing = path;
  const rest: string[] = [];
  for (;;) {
    try {
      return join(realpathSync.native(existing), ...rest);
    } catch {
      const up = dirname(existing);
      if (up === existing) return path;
      rest.unshift(basename(existing));
      existing = up;
    }
  }
}

function sameServer(a: { server: string; port: string; addresses: string[] }, b: { server: string; port: string; addresses: string[] }): boolean {
  if (a.port !== b.port) return false;
  return a.server === b.server || a.addresses.some((x) => b.addresses.includes(x));
}

/** Whether `inner` is `outer` or lies below it. */
function within(inner: string, outer: string, separator: string): boolean {
  return inner === outer || outer === '' || inner.startsWith(outer.endsWith(separator) ? outer : outer + separator);
}

/** How two places relate: one root, one inside the other, or apart. */
function relation(a: Place, b: Place): 'same' | 'nested' | 'apart' {
  let ab: boolean;
  let ba: boolean;
  if (a.kind === 's3' && b.kind === 's3') {
    if (a.bucket !== b.bucket || !sameServer(a, b)) return 'apart';
    [ab, ba] = [within(a.prefix, b.prefix, '/'), within(b.prefix, a.prefix, '/')];
  } else if (a.kind === 'path' && b.kind === 'path') {
    [ab, ba] = [within(a.path, b.path, sep), within(b.path, a.path, sep)];
  } else {
    return 'apart';
  }
  return ab && ba ? 'same' : ab || ba ? 'nested' : 'apart';
}

export interface StoreInUse {
  url: string;
  /** For messages: "the host's file store", "another owner's store". */
  what: string;
  /** The very same root may be shared (stores keyed by owner inside); the backup store's may not. */
  sameRootShared: boolean;
}

/**
 * Refuses a blob store or flat-file root that contains, or lies inside, one already in
 * use (the host's, the backups', another owner's): stores lay keys out by owner from
 * their root, so a store rooted inside another would put one owner's keys among
 * another's (counted in their quota, listed as their backups). Sharing the very root of
 * the host's or another owner's store is fine: every key starts with its owner.
 */
export async function checkNoOverlap(url: string, inUse: readonly StoreInUse[]): Promise<void> {
  let mine: Place[];
  try {
    mine = await placesOf(url);
  } catch {
    return; // a malformed URL is refused when the store is opened, with its own message
  }
  if (mine.length === 0) return;
  for (const other of inUse) {
    let theirs: Place[];
    try {
      theirs = await placesOf(other.url);
    } catch {
      continue;
    }
    for (const a of mine) {
      for (const b of theirs) {
        const how = relation(a, b);
        if (how === 'nested' || (how === 'same' && !other.sameRootShared)) {
          refuse(`That store overlaps ${other.what}: choose a bucket, prefix or folder of its own`);
        }
      }
    }
  }
}
