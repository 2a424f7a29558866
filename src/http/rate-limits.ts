import type { FastifyInstance, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { createHash } from 'node:crypto';
import type { Services } from '../core/services.js';
import { bearerToken } from './auth.js';

/**
 * Rate limits are opt-in per route (`config.rateLimit`), on by default in config, and
 * all switched off by FREEHOLD_RATE_LIMIT=off (benchmarks, conformance runs).
 * Counters live in process memory: with several processes each enforces its own share.
 */
export async function registerRateLimits(app: FastifyInstance): Promise<void> {
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) => ({
      statusCode: 429,
      error: 'rate_limited',
      message: `Too many requests; try again in ${Math.ceil(context.ttl / 1000)} s`,
    }),
  });
}

type RouteLimit = { max: number; timeWindow: number; keyGenerator?: (r: FastifyRequest) => string } | false;

/** Sign-in: per client address. */
export function loginRateLimit(services: Services): RouteLimit {
  if (!services.config.rateLimit) return false;
  return { max: services.config.loginRateLimit, timeWindow: 60_000 };
}

/** API: per token (hashed, so the counter table never holds a usable token), else per address. */
export function apiRateLimit(services: Services): RouteLimit {
  if (!services.config.rateLimit) return false;
  return {
    max: services.config.apiRateLimit,
    timeWindow: 60_000,
    keyGenerator: (r) => {
      const token = bearerToken(r);
      return token ? 't:' + createHash('sha256').update(token).digest('base64url').slice(0, 22) : 'ip:' + r.ip;
    },
  };
}
