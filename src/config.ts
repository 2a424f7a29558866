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
  /** Whether owners may point their own data at their own (network) stores, or only the admin may. */
  ownerStorage: boolean;
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

function readFileConfig(env: NodeJS.ProcessEnv): FileConfig {
  const file = env.FREEHOLD_CONFIG ?? 'freehold.config.json';
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

function pick(env: string | undefined, file: unknown): string | undefined {
  if (env !== undefined && env !== '') return env;
  if (file === undefined || file === null) return undefined;
  return String(file);
}

function int(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${value}`);
  return n;
}

function appOrigins(value: string | undefined): 'subdomain' | 'path' {
  if (value === undefined) return 'subdomain';
  const v = value.toLowerCase();
  if (v !== 'subdomain' && v !== 'path') throw new Error(`FREEHOLD_APP_ORIGINS must be subdomain or path, got ${value}`);
  return v;
}

/** A bare host name (optionally with a port), lowercase, no scheme, no trailing dot. */
function appsDomain(value: string | undefined): string {
  if (value === undefined) return '';
  const v = value.toLowerCase().replace(/\.$/, '');
  if (!/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+(?::\d{1,5})?$/.test(v)) {
    throw new Error(`FREEHOLD_APPS_DOMAIN must be a host name such as apps.example.com, got ${value}`);
  }
  return v;
}

/** `true` is one proxy; a number is that many in a chain (a CDN in front of nginx: 2). */
function proxyHops(value: string | undefined): number {
  if (value === undefined) return 0;
  const v = value.trim().toLowerCase();
  if (/^\d{1,2}$/.test(v)) return Number(v);
  if (['true', 'yes', 'on'].includes(v)) return 1;
  if (['false', 'no', 'off'].includes(v)) return 0;
  // An address list (Fastify's own syntax) or a typo must not quietly become "trust any peer".
  throw new Error(`FREEHOLD_TRUST_PROXY must be true, false or a number of proxies, got ${value}`);
}

function bool(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  return !['0', 'false', 'off', 'no'].includes(value.toLowerCase());
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const file = readFileConfig(env);
  const dataDir = path.resolve(overrides.dataDir ?? pick(env.FREEHOLD_DATA, file.dataDir) ?? './data');
  const port = overrides.port ?? int('PORT', pick(env.PORT, file.port), 3000);
  const host = overrides.host ?? pick(env.HOST, file.host) ?? '127.0.0.1';
  const publicHost = host === '0.0.0.0' || host === '::' || host === '127.0.0.1' ? 'localhost' : host;
  const config: Config = {
    port,
    host,
    dataDir,
    records: pick(env.FREEHOLD_RECORDS, file.records) ?? `sqlite:${path.join(dataDir, 'freehold.db')}`,
    blobs: pick(env.FREEHOLD_BLOBS, file.blobs) ?? `fs:${path.join(dataDir, 'files')}`,
    publicUrl: (pick(env.FREEHOLD_PUBLIC_URL, file.publicUrl) ?? `http://${publicHost}:${port}`).replace(/\/+$/, ''),
    trustProxy: proxyHops(pick(env.FREEHOLD_TRUST_PROXY, file.trustProxy)),
    rateLimit: bool(pick(env.FREEHOLD_RATE_LIMIT, file.rateLimit), true),
    loginRateLimit: int('FREEHOLD_LOGIN_RATE_LIMIT', pick(env.FREEHOLD_LOGIN_RATE_LIMIT, file.loginRateLimit), 10),
    apiRateLimit: int('FREEHOLD_API_RATE_LIMIT', pick(env.FREEHOLD_API_RATE_LIMIT, file.apiRateLimit), 6000),
    tokenCacheMs: int('FREEHOLD_TOKEN_CACHE_MS', pick(env.FREEHOLD_TOKEN_CACHE_MS, file.tokenCacheMs), DEFAULT_TOKEN_CACHE_MS),
    logLevel: pick(env.FREEHOLD_LOG_LEVEL, file.logLevel) ?? 'info',
    maxBodyBytes: int('FREEHOLD_MAX_BODY', pick(env.FREEHOLD_MAX_BODY, file.maxBodyBytes), 3 * 1024 * 1024),
    maxUploadBytes: int('FREEHOLD_MAX_UPLOAD', pick(env.FREEHOLD_MAX_UPLOAD, file.maxUploadBytes), 100 * 1024 * 1024),
    bodyIdleTimeoutMs: int('FREEHOLD_BODY_IDLE_TIMEOUT_MS', pick(env.FREEHOLD_BODY_IDLE_TIMEOUT_MS, file.bodyIdleTimeoutMs), 60_000),
    bodyMinRate: int('FREEHOLD_BODY_MIN_RATE', pick(env.FREEHOLD_BODY_MIN_RATE, file.bodyMinRate), 500),
    bodyRateWindowMs: int('FREEHOLD_BODY_RATE_WINDOW_MS', pick(env.FREEHOLD_BODY_RATE_WINDOW_MS, file.bodyRateWindowMs), 20_000),
    stopGraceMs: int('FREEHOLD_STOP_GRACE_MS', pick(env.FREEHOLD_STOP_GRACE_MS, file.stopGraceMs), 10_000),
    maxAppBytes: int('FREEHOLD_MAX_APP', pick(env.FREEHOLD_MAX_APP, file.maxAppBytes), 50 * 1024 * 1024),
    sessionTtlMs: int('FREEHOLD_SESSION_TTL', pick(env.FREEHOLD_SESSION_TTL, file.sessionTtlMs), 30 * 24 * 3600 * 1000),
    storagePollMs: int('FREEHOLD_STORAGE_POLL', pick(env.FREEHOLD_STORAGE_POLL, file.storagePollMs), 1000),
    ownerStorage: bool(pick(env.FREEHOLD_OWNER_STORAGE, file.ownerStorage), false),
    backupBlobs: pick(env.FREEHOLD_BACKUP_BLOBS, file.backupBlobs) ?? '',
    backupIntervalHours: int('FREEHOLD_BACKUP_INTERVAL_HOURS', pick(env.FREEHOLD_BACKUP_INTERVAL_HOURS, file.backupIntervalHours), 24),
    backupKeep: int('FREEHOLD_BACKUP_KEEP', pick(env.FREEHOLD_BACKUP_KEEP, file.backupKeep), 7),
    quotaBytes: int('FREEHOLD_QUOTA_BYTES', pick(env.FREEHOLD_QUOTA_BYTES, file.quotaBytes), 0),
    quotaRecords: int('FREEHOLD_QUOTA_RECORDS', pick(env.FREEHOLD_QUOTA_RECORDS, file.quotaRecords), 0),
    encryptionKey: pick(env.FREEHOLD_ENCRYPTION_KEY, file.encryptionKey) ?? '',
    appOrigins: appOrigins(pick(env.FREEHOLD_APP_ORIGINS, file.appOrigins)),
    appsDomain: appsDomain(pick(env.FREEHOLD_APPS_DOMAIN, file.appsDomain)),
  };
  if (config.encryptionKey !== '' && config.encryptionKey.length < 32) {
    throw new Error('FREEHOLD_ENCRYPTION_KEY must be at least 32 characters (e.g. openssl rand -base64 32)');
  }
  return { ...config, ...overrides };
}
