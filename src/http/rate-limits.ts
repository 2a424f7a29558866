import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler, onResponseHookHandler } from 'fastify';
import type { Services } from '../core/services.js';
import { FreeholdError } from '../core/errors.js';
import { bearerToken, bearerTokenHash, tokenVerified } from './auth.js';
import { addressKey, RecentKeys, RequestWindows } from './rate-window.js';

/**
 * Rate limits are opt-in per route (`config.rateLimit`), on by default in config, and
 * all switched off by FREEHOLD_RATE_LIMIT=off (benchmarks, conformance runs).
 *
 * Routes that give the same limit share its counters: every sign-in route (password,
 * second factor, OAuth token, app password) draws on one allowance per address, so
 * an attacker gets `loginRateLimit` guesses a minute in all, not that many per route;
 * every CEPS/FEPS route draws on one allowance per token.
 *
 * Counters live in process memory: with several processes each enforces its own share.
 * Answers carry `x-ratelimit-limit`, `-remaining` and `-reset` (seconds), and a 429
 * carries `retry-after`.
 */

export interface RouteLimit {
  windows: RequestWindows;
  /** What one client is: requests with the same key share the allowance. */
  key(request: FastifyRequest): string;
  /** Learns from a finished request (which tokens proved valid). */
  settled?(request: FastifyRequest): void;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    rateLimit?: RouteLimit | false;
  }
}

const MINUTE = 60_000;

export function registerRateLimits(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const limit = route.config?.rateLimit;
    if (!limit) return;
    const check = limitHook(limit);
    const existing = route.onRequest;
    route.onRequest = existing === undefined ? [check] : Array.isArray(existing) ? [...existing, check] : [existing, check];
    const settled = limit.settled;
    if (settled) {
      const learn: onResponseHookHandler = (request, _reply, done) => {
        settled(request);
        done();
      };
      const after = route.onResponse;
      route.onResponse = after === undefined ? [learn] : Array.isArray(after) ? [...after, learn] : [after, learn];
    }
  });
}

function limitHook({ windows, key }: RouteLimit): onRequestHookHandler {
  return (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    const now = Date.now();
    const hit = windows.hit(key(request), now);
    const resetSeconds = Math.max(1, Math.ceil((hit.resetAt - now) / 1000));
    reply.header('x-ratelimit-limit', windows.max);
    reply.header('x-ratelimit-remaining', Math.max(0, windows.max - hit.count));
    reply.header('x-ratelimit-reset', resetSeconds);
    if (hit.count <= windows.max) return done();
    reply.header('retry-after', resetSeconds);
    done(new FreeholdError('rate_limited', `Too many requests; try again in ${resetSeconds} s`));
  };
}

/** One set of counters per server (tests build several servers in one process). */
function perServer(make: (services: Services) => RouteLimit): (services: Services) => RouteLimit | false {
  const made = new WeakMap<Services, RouteLimit>();
  return (services) => {
    if (!services.config.rateLimit) return false;
    let limit = made.get(services);
    if (!limit) made.set(services, (limit = make(services)));
    return limit;
  };
}

/** Sign-in and token attempts: per client address, shared by every sign-in route. */
export const loginRateLimit = perServer((services) => ({
  windows: new RequestWindows(services.config.loginRateLimit, MINUTE),
  key: (r) => addressKey(r.ip),
}));

/**
 * API: per token (hashed, so the counters never hold a usable token) once the token
 * has proved valid, else per address. A made-up token is not a client of its own:
 * otherwise each request with a fresh one got a fresh allowance (never a 429), and a
 * flood of them filled the counters until real tokens' windows were dropped. So a
 * token is counted on its address until a request with it has passed the token
 * check (its first request, typically), then on its own window.
 */
export const apiRateLimit = perServer((services) => {
  const windows = new RequestWindows(services.config.apiRateLimit, MINUTE);
  const valid = new RecentKeys();
  const tokenKey = (r: FastifyRequest): string | null => {
    const token = bearerToken(r);
    return token ? 't:' + bearerTokenHash(r, token).slice(0, 32) : null;
  };
  return {
    windows,
    key: (r) => {
      const t = tokenKey(r);
      return t !== null && valid.has(t) ? t : 'ip:' + addressKey(r.ip);
    },
    settled: (r) => {
      if (!tokenVerified(r)) return;
      const t = tokenKey(r);
      if (t === null || valid.has(t)) return;
      valid.add(t);
      // The request that proved it counts on the token's own window too.
      windows.hit(t);
    },
  };
});
