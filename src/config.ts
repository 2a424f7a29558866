import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_TOKEN_CACHE_MS } from './core/auth/tokens.js';

/**
 * Configuration comes from environment variables, then an optional JSON file
 * (`FREEHOLD_CONFIG`, default `./freehold.config.json`), then defaults. The
 * environment wins so that one file can serve several deployments.
 * Every setting is documented in the README's Configuration table.
 */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /** Record store URL for the host (system tables and owners without their own store). */
  records: string;
  /** Blob store URL for the host. */
  blobs: string;
  /** The address people use to reach this server; decides Secure cookies and printed URLs. */
  publicUrl: string;
  /**
   * Reverse proxies in front of the server whose X-Forwarded-* to believe: 0 none. The
   * client address is then the one the nearest of them saw, never an address a client
   * wrote into X-Forwarded-For itself (which would let it pick a fresh one per request).
   */
  trustProxy: number;
  rateLimit: boolean;
  /** Sign-in attempts per address per minute. */
  loginRateLimit: number;
  /** API requests per token per minute. */
  apiRateLimit: number;
  /**
   * How long a checked app token may be kept without a store lookup (ms), on stores
   * that report commits by other processes (SQLite); 0: every request looks.
   */
  tokenCacheMs: number;
  logLevel: string;
  /** Largest JSON request body, in bytes. Records themselves are capped at 2 MB. */
  maxBodyBytes: number;
  /** Largest uploaded user file, in bytes. */
  maxUploadBytes: number;
  /** A request whose body stops coming for this long (ms) is cut off; 0: wait for ever. */
  bodyIdleTimeoutMs: number;
  /** Fewest bytes a second a request body must bring over each rate window, or it is cut off; 0: no minimum. */
  bodyMinRate: number;
  /** The span (ms) a body's rate is judged over, and the grace before it is first judged. */
  bodyRateWindowMs: number;
  /** On SIGTERM/SIGINT, how long (ms) requests in flight may finish before their connections are cut. */
  stopGraceMs: number;
  /** Largest app package, in bytes. */
  maxAppBytes: number;
  /** Lifetime of a sign-in session, in ms. */
  sessionTtlMs: number;
  /** How often each process looks for owners' storage changes made elsewhere (ms). */
  storagePollMs: number;
  /** How long an owner's stores that could not be opened wait before the next try (ms). */
  storageReopenMs: number;
  /** Whether owners may point their own data at their own (network) stores, or only the admin may. */
  ownerStorage: boolean;
  /** Whether owners' own stores may be on loopback or private addresses (the host's own network). */
  ownerStoragePrivate: boolean;
  /** Blob store URL for backups (empty: no backups). */
  backupBlobs: string;
  /** Hours between scheduled backups of each owner (0: only on demand). */
  backupIntervalHours: number;
  /** Backups kept per owner. */
  backupKeep: number;
  /** Default per-owner storage quota in bytes (records' JSON + files + apps); 0: unlimited. */
  quotaBytes: number;
  /** Default per-owner quota in records; 0: unlimited. */
  quotaRecords: number;
  /**
   * Key material for secrets encrypted at rest (TOTP secrets), kept outside the
   * store so that a copy of the database alone cannot decrypt them. Empty: derived
   * from the host secret in the store (protects against partial leaks only).
   */
  encryptionKey: string;
  /**
   * How app pages are isolated (README "App isolation"): `subdomain` gives each
   * (owner, app) an origin of its own; `path` serves apps under /apps/<app>/ on the
   * main origin (weaker: see the README's list of what it cannot protect).
   */
  appOrigins: 'subdomain' | 'path';
  /** Parent domain of app origins (`<label>.<appsDomain>`); empty: `<app>.<user>.localhost`. */
  appsDomain: string;
}

type FileConfig = Partial<Record<keyof Config, unknown>>;

/** The config file: `FREEHOLD_CONFIG`, else `freehold.config.json` in the working directory (an empty name: none). */
function configFileName(env: NodeJS.ProcessEnv): string {
  return env.FREEHOLD_CONFIG ?? 'freehold.config.json';
}

function readFileConfig(env: NodeJS.ProcessEnv): FileConfig {
  const file = configFileName(env);
  if (!existsSync(file)) {
    if (env.FREEHOLD_CONFIG) throw new Error(`FREEHOLD_CONFIG names ${file}, which does not exist`);
    return {};
  }
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as FileConfig;
  } catch (err) {
    throw new Error(`Cannot read config file ${file}: ${(err as Error).message}`);
  }
}

/** A setting's raw value and where it came from, for error messages that point at the right place. */
interface Setting {
  value: string | undefined;
  /** `PORT`, or `port in freehold.config.json`. */
  source: string;
}

/** The levels pino knows; another name made the logger throw a message about "custom levels". */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function int({ value, source }: Setting, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > max) {
    throw new Error(`${source} must be ${max === Number.MAX_SAFE_INTEGER ? 'a non-negative integer' : `an integer from 0 to ${max}`}, got ${value}`);
  }
  return n;
}

function oneOf<T extends string>({ value, source }: Setting, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  const v = value.trim().toLowerCase() as T;
  if (!allowed.includes(v)) throw new Error(`${source} must be ${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}, got ${value}`);
  return v;
}

/** A bare host name (optionally with a port), lowercase, no scheme, no trailing dot. */
function appsDomain({ value, source }: Setting): string {
  if (value === undefined) return '';
  const v = value.toLowerCase().replace(/\.$/, '');
  if (!/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+(?::\d{1,5})?$/.test(v)) {
    throw new Error(`${source} must be a host name such as apps.example.com, got ${value}`);
  }
  return v;
}

/** `true` is one proxy; a number is that many in a chain (a CDN in front of nginx: 2). */
function proxyHops({ value, source }: Setting): number {
  if (value === undefined) return 0;
  const v = value.trim().toLowerCase();
  if (/^\d{1,2}$/.test(v)) return Number(v);
  if (['true', 'yes', 'on'].includes(v)) return 1;
  if (['false', 'no', 'off'].includes(v)) return 0;
  // An address list (Fastify's own syntax) or a typo must not quietly become "trust any peer".
  throw new Error(`${source} must be true, false or a number of proxies, got ${value}`);
}

/** On or off, spelled any common way; anything else (`of`, a typo) is refused rather than read as on. */
function bool({ value, source }: Setting, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'on', 'yes'].includes(v)) return true;
  if (['0', 'false', 'off', 'no'].includes(v)) return false;
  throw new Error(`${source} must be on or off (true/false, yes/no, 1/0), got ${value}`);
}

/** The address people reach the server at: an absolute http(s) URL, kept without its trailing slashes. */
function publicUrl({ value, source }: Setting, fallback: string): string {
  const url = value ?? fallback;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(value === undefined ? `No valid address can be made of the host and port (${url})` : `${source} must be an http(s) address such as https://me.example.com, got ${value}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`${source} must be an http(s) address, got ${value}`);
  return url.replace(/\/+$/, '');
}

/**
 * The log level of one-shot commands (`freehold user add`, `import`, …): the configured
 * one when set (environment or file), else `warn`, so that a command's own output is not
 * buried under the server's `info` lines.
 */
export function commandLogLevel(env: NodeJS.ProcessEnv = process.env): string {
  return oneOf(settingsOf(env)('FREEHOLD_LOG_LEVEL', 'logLevel'), LOG_LEVELS, 'warn');
}

/** Reads one setting: the environment wins over the file; an empty variable counts as unset. */
function settingsOf(env: NodeJS.ProcessEnv): (envName: string, key: keyof Config) => Setting {
  const fileName = configFileName(env);
  const file = readFileConfig(env);
  return (envName, key) => {
    const fromEnv = env[envName];
    if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, source: envName };
    const fromFile = file[key];
    return { value: fromFile === undefined || fromFile === null ? undefined : String(fromFile), source: `${key} in ${fileName}` };
  };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const get = settingsOf(env);
  const dataDir = path.resolve(overrides.dataDir ?? get('FREEHOLD_DATA', 'dataDir').value ?? './data');
  const port = overrides.port ?? int(get('PORT', 'port'), 3000, 65535);
  const host = overrides.host ?? get('HOST', 'host').value ?? '127.0.0.1';
  const publicHost = host === '0.0.0.0' || host === '::' || host === '127.0.0.1' ? 'localhost' : host;
  const config: Config = {
    port,
    host,
    dataDir,
    records: get('FREEHOLD_RECORDS', 'records').value ?? `sqlite:${path.join(dataDir, 'freehold.db')}`,
    blobs: get('FREEHOLD_BLOBS', 'blobs').value ?? `fs:${path.join(dataDir, 'files')}`,
    publicUrl: publicUrl(get('FREEHOLD_PUBLIC_URL', 'publicUrl'), `http://${publicHost.includes(':') ? `[${publicHost}]` : publicHost}:${port}`),
    trustProxy: proxyHops(get('FREEHOLD_TRUST_PROXY', 'trustProxy')),
    rateLimit: bool(get('FREEHOLD_RATE_LIMIT', 'rateLimit'), true),
    loginRateLimit: int(get('FREEHOLD_LOGIN_RATE_LIMIT', 'loginRateLimit'), 10),
    apiRateLimit: int(get('FREEHOLD_API_RATE_LIMIT', 'apiRateLimit'), 6000),
    tokenCacheMs: int(get('FREEHOLD_TOKEN_CACHE_MS', 'tokenCacheMs'), DEFAULT_TOKEN_CACHE_MS),
    logLevel: oneOf(get('FREEHOLD_LOG_LEVEL', 'logLevel'), LOG_LEVELS, 'info'),
    maxBodyBytes: int(get('FREEHOLD_MAX_BODY', 'maxBodyBytes'), 3 * 1024 * 1024),
    maxUploadBytes: int(get('FREEHOLD_MAX_UPLOAD', 'maxUploadBytes'), 100 * 1024 * 1024),
    bodyIdleTimeoutMs: int(get('FREEHOLD_BODY_IDLE_TIMEOUT_MS', 'bodyIdleTimeoutMs'), 60_000),
    bodyMinRate: int(get('FREEHOLD_BODY_MIN_RATE', 'bodyMinRate'), 500),
    bodyRateWindowMs: int(get('FREEHOLD_BODY_RATE_WINDOW_MS', 'bodyRateWindowMs'), 20_000),
    stopGraceMs: int(get('FREEHOLD_STOP_GRACE_MS', 'stopGraceMs'), 10_000),
    maxAppBytes: int(get('FREEHOLD_MAX_APP', 'maxAppBytes'), 50 * 1024 * 1024),
    sessionTtlMs: int(get('FREEHOLD_SESSION_TTL', 'sessionTtlMs'), 30 * 24 * 3600 * 1000),
    storagePollMs: int(get('FREEHOLD_STORAGE_POLL', 'storagePollMs'), 1000),
    storageReopenMs: int(get('FREEHOLD_STORAGE_REOPEN', 'storageReopenMs'), 10_000),
    ownerStorage: bool(get('FREEHOLD_OWNER_STORAGE', 'ownerStorage'), false),
    ownerStoragePrivate: bool(get('FREEHOLD_OWNER_STORAGE_PRIVATE', 'ownerStoragePrivate'), false),
    backupBlobs: get('FREEHOLD_BACKUP_BLOBS', 'backupBlobs').value ?? '',
    backupIntervalHours: int(get('FREEHOLD_BACKUP_INTERVAL_HOURS', 'backupIntervalHours'), 24),
    backupKeep: int(get('FREEHOLD_BACKUP_KEEP', 'backupKeep'), 7),
    quotaBytes: int(get('FREEHOLD_QUOTA_BYTES', 'quotaBytes'), 0),
    quotaRecords: int(get('FREEHOLD_QUOTA_RECORDS', 'quotaRecords'), 0),
    encryptionKey: get('FREEHOLD_ENCRYPTION_KEY', 'encryptionKey').value ?? '',
    appOrigins: oneOf(get('FREEHOLD_APP_ORIGINS', 'appOrigins'), ['subdomain', 'path'] as const, 'subdomain'),
    appsDomain: appsDomain(get('FREEHOLD_APPS_DOMAIN', 'appsDomain')),
  };
  // Read where the SQLite store starts its threads (environment only); checked here so a typo is not taken for the default.
  for (const name of ['FREEHOLD_SQLITE_QUERIES', 'FREEHOLD_SQLITE_CHECKPOINT']) {
    const value = env[name];
    if (value !== undefined && value !== '' && value !== 'main' && value !== 'worker') throw new Error(`${name} must be main or worker, got ${value}`);
  }
  if (config.encryptionKey !== '' && config.encryptionKey.length < 32) {
    throw new Error('FREEHOLD_ENCRYPTION_KEY must be at least 32 characters (e.g. openssl rand -base64 32)');
  }
  return { ...config, ...overrides };
}
