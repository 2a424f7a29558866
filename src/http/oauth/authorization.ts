import { FreeholdError } from '../../core/errors.js';
import { assertAppName } from '../../core/names.js';

/**
 * An authorization request (RFC 6749 §4.1.1 with PKCE, RFC 7636 §4.3) once checked.
 * Public clients, no registration: the client is the app whose data the token
 * reaches (`client_id` = app name), and the owner sees where the code will go before
 * allowing it.
 */
export interface AuthorizationRequest {
  appName: string;
  redirectUri: string;
  codeChallenge: string;
  state?: string;
}

/** RFC 7636 §4.1: 43–128 unreserved characters (an S256 challenge is always 43). */
const PKCE_TEXT = /^[A-Za-z0-9\-._~]{43,128}$/;
const MAX_REDIRECT_URI = 1000;
const MAX_STATE = 500;
/** A private-use scheme of a native app names a domain it controls (RFC 8252 §7.1): reverse-domain, with a dot. */
const NATIVE_SCHEME = /^[a-z][a-z0-9+\-]*(\.[a-z0-9+\-]+)+:$/;
const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

export interface AuthorizationParams {
  response_type?: unknown;
  client_id?: unknown;
  redirect_uri?: unknown;
  code_challenge?: unknown;
  code_challenge_method?: unknown;
  state?: unknown;
}

const invalid = (message: string) => new FreeholdError('bad_request', message);

/** Checks every parameter; a request that fails is never redirected (its redirect_uri is not trusted yet). */
export function checkAuthorization(p: AuthorizationParams): AuthorizationRequest {
  if (p.response_type !== 'code') throw invalid('response_type must be "code"');
  // As for app passwords: never a name reserved for the server's own apps.
  const appName = assertAppName(p.client_id, true);
  const redirectUri = checkRedirectUri(p.redirect_uri);
  if (typeof p.code_challenge !== 'string' || !PKCE_TEXT.test(p.code_challenge)) {
    throw invalid('code_challenge is required: the S256 challenge of a PKCE code verifier (RFC 7636)');
  }
  if (p.code_challenge_method !== 'S256') throw invalid('code_challenge_method must be "S256" ("plain" is not accepted)');
  if (p.state !== undefined && (typeof p.state !== 'string' || p.state.length > MAX_STATE)) throw invalid(`state must be text of at most ${MAX_STATE} characters`);
  return { appName, redirectUri, codeChallenge: p.code_challenge, ...(p.state !== undefined ? { state: p.state as string } : {}) };
}

/**
 * Where a code may be sent: https; http only to this machine's loopback (a native app
 * listening there, RFC 8252 §7.3); or a native app's own reverse-domain scheme
 * (RFC 8252 §7.1). Never with a fragment (RFC 6749 §3.1.2), never with credentials.
 */
export function checkRedirectUri(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_REDIRECT_URI) {
    throw invalid(`redirect_uri is required (an absolute URL of at most ${MAX_REDIRECT_URI} characters)`);
  }
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw invalid('redirect_uri must be an absolute URL');
  }
  if (value.includes('#')) throw invalid('redirect_uri must not have a fragment');
  if (u.username || u.password) throw invalid('redirect_uri must not carry credentials');
  const ok = u.protocol === 'https:'
    || (u.protocol === 'http:' && LOOPBACK.has(u.hostname))
    || NATIVE_SCHEME.test(u.protocol);
  if (!ok) throw invalid('redirect_uri must be https, http on the loopback address, or a reverse-domain app scheme (com.example.app:/callback)');
  return value;
}

/** The redirect_uri with the answer's parameters added (its own query kept, RFC 6749 §3.1.2). */
export function redirectWith(redirectUri: string, params: Record<string, string | undefined>): string {
  const u = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u.toString();
}

/** What the owner is shown: where the code goes, in a form that cannot be dressed up. */
export function describeRedirect(redirectUri: string): string {
  const u = new URL(redirectUri);
  return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : u.protocol;
}

/** A PKCE code verifier's form (RFC 7636 §4.1). */
export function isCodeVerifier(value: unknown): value is string {
  return typeof value === 'string' && PKCE_TEXT.test(value);
}
