import type { Config } from '../config.js';
import {
  LOCAL_PARENT, appHostname, domainLabel, isUnderAppsParent, parseAppHostname, stripPort, type ParsedAppHost,
} from './app-origin/hostnames.js';

/**
 * The one place that decides which origin serves an app (README "App isolation").
 *
 *  - `subdomain` (the default): every (owner, app) has an origin of its own,
 *    `http://<app>.<user>.localhost:<port>` locally or `https://<label>.<apps domain>`
 *    with FREEHOLD_APPS_DOMAIN. The browser's same-origin policy then keeps apps
 *    from each other and from the owner's pages: storage, cookies, DOM and windows.
 *  - `path`: every app under `/apps/<app>/` on the main origin, as freezr does.
 *
 * Subdomains need names that reach this server: `*.localhost` does by itself (browsers
 * resolve it to loopback); anything else needs FREEHOLD_APPS_DOMAIN with wildcard DNS.
 * A public URL that is neither falls back to path mode, and the server says so when it
 * starts (see effectiveMode's callers).
 *
 * Config is read on every call, never cached: the public URL's port is only known once
 * the server listens.
 */
export interface AppLocation {
  /** Absolute URL of the app's root, ending in `/`. */
  baseUrl: string;
  /** URL path prefix of the app's files, ending in `/`. */
  pathPrefix: string;
  /** The origin the app's pages run on. */
  origin: string;
  /** Set when the host is a hashed label, which the host store must remember to resolve it. */
  hashedLabel?: string;
}

export type AppOriginMode = 'subdomain' | 'path';

export type HostKind =
  | { kind: 'main' }
  | { kind: 'app'; host: ParsedAppHost }
  /** Under the app hosts' parent, but naming no app: nothing is served there. */
  | { kind: 'none' };

let parsedPublicUrl: { text: string; url: URL } | undefined;

/** The parsed public URL; every request asks (classifyHost), so the parse is kept until the text changes. Callers only read it. */
function publicUrl(config: Config): URL {
  if (parsedPublicUrl?.text !== config.publicUrl) parsedPublicUrl = { text: config.publicUrl, url: new URL(config.publicUrl) };
  return parsedPublicUrl.url;
}

/** Whether subdomains can be used: an apps domain, or a public URL on localhost. */
function canUseSubdomains(config: Config): boolean {
  if (config.appsDomain !== '') return true;
  const host = publicUrl(config).hostname;
  return host === LOCAL_PARENT || host.endsWith(`.${LOCAL_PARENT}`);
}

/** The mode actually in force (subdomain falls back to path when no app host names can work). */
export function effectiveMode(config: Config): AppOriginMode {
  return config.appOrigins === 'subdomain' && canUseSubdomains(config) ? 'subdomain' : 'path';
}

/** Why the configured subdomain mode is not in force, or null when it is (or path was asked for). */
export function fallbackReason(config: Config): string | null {
  if (config.appOrigins !== 'subdomain' || canUseSubdomains(config)) return null;
  return `FREEHOLD_APP_ORIGINS=subdomain needs FREEHOLD_APPS_DOMAIN (wildcard DNS) when the public URL (${config.publicUrl}) is not on localhost; `
    + 'serving apps in path mode, which cannot isolate apps from each other or from the owner pages (README "App isolation")';
}

/** The main origin: owner pages, account API, sign-in. */
export function mainOrigin(config: Config): string {
  return publicUrl(config).origin;
}

export function appLocation(config: Config, ownerId: string, appName: string): AppLocation {
  if (effectiveMode(config) === 'path') {
    const origin = mainOrigin(config);
    const pathPrefix = `/apps/${appName}/`;
    return { baseUrl: origin + pathPrefix, pathPrefix, origin };
  }
  const url = publicUrl(config);
  const domainPort = config.appsDomain.includes(':') ? config.appsDomain.slice(config.appsDomain.lastIndexOf(':') + 1) : '';
  const port = domainPort || url.port;
  const origin = `${url.protocol}//${appHostname(config.appsDomain, ownerId, appName)}${port ? `:${port}` : ''}`;
  const loc: AppLocation = { baseUrl: `${origin}/`, pathPrefix: '/', origin };
  if (config.appsDomain !== '') {
    const { label, hashed } = domainLabel(ownerId, appName);
    if (hashed) loc.hashedLabel = label;
  }
  return loc;
}

/** The origin of the API (CEPS/FEPS) as seen by an app's pages: the app's own origin, or the main one in path mode. */
export function apiOrigin(config: Config, loc: AppLocation): string {
  return effectiveMode(config) === 'subdomain' ? loc.origin : mainOrigin(config);
}

/** What a Host header (name and optional port) names. In path mode every host is the main one. */
export function classifyHost(config: Config, host: string | undefined): HostKind {
  if (effectiveMode(config) === 'path') return { kind: 'main' };
  const hostname = stripPort(host ?? '').toLowerCase();
  if (hostname === publicUrl(config).hostname) return { kind: 'main' };
  const parsed = parseAppHostname(config.appsDomain, hostname);
  if (parsed) return { kind: 'app', host: parsed };
  return isUnderAppsParent(config.appsDomain, hostname) ? { kind: 'none' } : { kind: 'main' };
}

/**
 * The app a host names: `{ kind: 'named', owner, app }` (app in lowercase, as DNS has
 * it), `{ kind: 'hashed', label }` for a label the host store resolves, or null for a
 * host that is not an app host.
 */
export function resolveAppHost(config: Config, host: string | undefined): ParsedAppHost | null {
  const kind = classifyHost(config, host);
  return kind.kind === 'app' ? kind.host : null;
}

/** Whether a host serves the owner's pages and the account API. */
export function isMainOrigin(config: Config, host: string | undefined): boolean {
  return classifyHost(config, host).kind === 'main';
}

export type { ParsedAppHost } from './app-origin/hostnames.js';
