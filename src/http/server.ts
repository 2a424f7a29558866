import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import multipart from '@fastify/multipart';
import type { Logger } from 'pino';
import type { Services } from '../core/services.js';
import { clientError, frameworkError } from './framework-errors.js';
import { registerErrorHandling } from './errors.js';
import { installJsonBodyParser } from './json-body.js';
import { registerCors } from './cors.js';
import { registerSecurityHeaders } from './security-headers.js';
import { registerBodyTimeouts } from './body-timeouts.js';
import { cepsRoutes } from './ceps/routes.js';
import { fepsRoutes } from './feps/routes.js';
import { accountRoutes } from './account/routes.js';
import { storageRoutes } from './account/storage-routes.js';
import { twoFactorRoutes } from './account/twofactor-routes.js';
import { oauthRoutes } from './oauth/routes.js';
import { appRoutes } from './apps/routes.js';
import { registerAppHosts } from './apps/app-host.js';
import { enterRoutes } from './apps/handoff.js';
import { fallbackReason } from './app-origin.js';
import { portabilityRoutes } from './portability/routes.js';
import { webRoutes } from './web/routes.js';
import { SERVER_VERSION } from './version.js';
import { registerRateLimits } from './rate-limits.js';
import { AccessLog } from './access-log.js';
import { lazyRequestLogger } from './request-logger.js';
import { lazyCompilers } from './lazy-compilers.js';
import { registerLingeringClose } from './lingering-close.js';
import { registerStopping } from './stopping.js';
import { lazyOpenApi } from './openapi.js';

export type App = FastifyInstance;

declare module 'fastify' {
  interface FastifyInstance {
    services: Services;
    /** Compiles every route's validators and serializers now, instead of at each route's first request. */
    compileAllSchemas(): void;
  }
}

/** Builds the HTTP server around already-created services. Does not listen. */
export async function buildServer(services: Services, logger: Logger | false = services.log): Promise<FastifyInstance> {
  const { config } = services;
  const compilers = lazyCompilers();
  const app = Fastify({
    ...(logger === false ? { logger: false } : { loggerInstance: logger as FastifyBaseLogger }),
    bodyLimit: config.maxBodyBytes,
    // A hop count, not `true`: with `true` the client address is the leftmost
    // X-Forwarded-For entry, which a client writes itself when the proxy appends. The
    // peer and the next (hops - 1) addresses back are proxies; the one before is the client.
    trustProxy: config.trustProxy > 0 ? (_address: string, hop: number) => hop < config.trustProxy : false,
    // Request ids are ours; a client-sent id is never trusted into logs.
    requestIdHeader: false,
    // One access-log line per request, not two (see access-log.ts: measured cost).
    logController: new AccessLog(logger === false ? undefined : logger),
    // Each request's logger becomes a pino child only when the request logs (request-logger.ts).
    ...(logger === false ? {} : { childLoggerFactory: lazyRequestLogger }),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    schemaController: { compilersFactory: compilers.compilersFactory },
    routerOptions: { maxParamLength: 500 },
    frameworkErrors: frameworkError,
    clientErrorHandler: clientError,
    // Refused by registerStopping instead, in the shape of every other refusal.
    return503OnClosing: false,
  });

  app.decorate('services', services);
  app.decorate('compileAllSchemas', compilers.compileAll);
  registerErrorHandling(app);
  registerLingeringClose(app);
  registerStopping(app);
  await app.register(cookie);
  await app.register(formbody, { bodyLimit: 64 * 1024 });
  await app.register(multipart, {
    // One byte over the limit reaches the BlobStore, whose own cap then refuses the file whole.
    limits: { fileSize: config.maxUploadBytes + 1, files: 1, fields: 20, fieldSize: 1024 * 1024, parts: 30, headerPairs: 200 },
    throwFileSizeLimit: true,
    // Text fields arrive byte for byte (each byte one character), not decoded as UTF-8,
    // which would turn bytes that are not UTF-8 into U+FFFD: the FEPS upload checks and
    // decodes its options field itself (feps/routes.ts parseOptions).
    defCharset: 'latin1',
  });
  // Routes are recorded from here on, as @fastify/swagger would; the document is built on first request.
  const openapi = lazyOpenApi(app, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'freehold', version: SERVER_VERSION, description: 'CEPS 2.0 personal server API' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  installJsonBodyParser(app);
  registerBodyTimeouts(app, { idleMs: config.bodyIdleTimeoutMs, minBytesPerSec: config.bodyMinRate, rateWindowMs: config.bodyRateWindowMs });
  registerRateLimits(app);
  registerSecurityHeaders(app);
  registerCors(app);
  // Before any route: on an app's own host only its files and the bearer APIs exist.
  registerAppHosts(app);
  const fallback = fallbackReason(config);
  if (fallback) services.log.warn(fallback);

  await app.register(cepsRoutes);
  await app.register(fepsRoutes);
  await app.register(accountRoutes);
  await app.register(storageRoutes);
  await app.register(twoFactorRoutes);
  await app.register(oauthRoutes);
  await app.register(appRoutes);
  await app.register(enterRoutes);
  await app.register(portabilityRoutes);
  await app.register(webRoutes);

  app.get('/openapi.json', { schema: { hide: true } }, () => openapi());
  await app.ready();
  return app;
}

export { SERVER_VERSION } from './version.js';
