import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DestinationStream } from 'pino';
import { createLogger } from '../../src/logger.js';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { loadConfig, type Config } from '../../src/config.js';
import { createServices, type Services } from '../../src/core/services.js';
import { buildServer } from '../../src/http/server.js';

export interface TestServer {
  app: FastifyInstance;
  services: Services;
  config: Config;
  dataDir: string;
  /** Base URL when started with `listen: true`; empty otherwise (use app.inject). */
  url: string;
  close(): Promise<void>;
  /** Creates a user directly through the core service. */
  addUser(userId: string, password?: string, isAdmin?: boolean): Promise<void>;
  /** Signs in over HTTP and returns the Cookie header value to send back. */
  signIn(userId: string, password?: string): Promise<string>;
  /** An app token for (user, app), as an app page would get. */
  appToken(userId: string, appName: string, ttlMs?: number): Promise<string>;
  /**
   * GETs a page or file of an app the way a browser would reach it, in either app-origin
   * mode: path mode asks `/apps/<app>/<rel>` on the main origin; subdomain mode follows
   * the handoff (`/apps/<app>` → `/_freehold/enter` on the app's host) and asks `/<rel>`
   * on the app's host with the app-session cookie. `headers` go on the final request.
   */
  appGet(cookie: string, appName: string, rel: string, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
}

export const TEST_PASSWORD = 'correct horse battery';

/**
 * A real server on real SQLite and a real file system in a fresh temp folder.
 * Rate limits are off unless a test turns them on.
 */
export async function startTestServer(opts: { listen?: boolean; config?: Partial<Config>; env?: NodeJS.ProcessEnv; logTo?: DestinationStream } = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'freehold-test-'));
  const config = loadConfig({ FREEHOLD_RATE_LIMIT: 'off', FREEHOLD_CONFIG: '', ...opts.env }, { dataDir, port: 0, ...opts.config });
  config.records = opts.config?.records ?? `sqlite:${path.join(dataDir, 'freehold.db')}`;
  config.blobs = opts.config?.blobs ?? `fs:${path.join(dataDir, 'files')}`;
  const log = createLogger(opts.logTo ? 'info' : process.env.TEST_LOG_LEVEL ?? 'silent', opts.logTo);
  const services = await createServices(config, log);
  const app = await buildServer(services);
  let url = '';
  if (opts.listen) {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.server.address();
    if (addr && typeof addr === 'object') url = `http://localhost:${addr.port}`;
    config.publicUrl = url;
  }
  return {
    app, services, config, dataDir, url,
    async close() {
      await app.close();
      await services.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
    async addUser(userId, password = TEST_PASSWORD, isAdmin = false) {
      await services.accounts.create(userId, password, isAdmin);
    },
    async signIn(userId, password = TEST_PASSWORD) {
      const res = await app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: userId, password } });
      if (res.statusCode !== 200) throw new Error(`sign-in failed: ${res.statusCode} ${res.body}`);
      return res.cookies.map((c) => `${c.name}=${c.value}`).join('; ');
    },
    async appToken(userId, appName, ttlMs = 3600_000) {
      return services.tokens.issue({ kind: 'app', userId, ownerId: userId, appName, expiresAt: Date.now() + ttlMs });
    },
    async appGet(cookie, appName, rel, headers = {}) {
      const first = await app.inject({ method: 'GET', url: `/apps/${appName}/${rel}`, headers: { cookie, ...(config.appOrigins === 'path' ? headers : {}) } });
      const location = String(first.headers.location ?? '');
      if (first.statusCode !== 302 || !location.includes('/_freehold/enter?')) return first;
      const enter = new URL(location);
      const entered = await app.inject({ method: 'GET', url: enter.pathname + enter.search, headers: { host: enter.host } });
      if (entered.statusCode !== 302) return entered;
      const appCookie = entered.cookies.map((c) => `${c.name}=${c.value}`).join('; ');
      return app.inject({ method: 'GET', url: String(entered.headers.location), headers: { host: enter.host, cookie: appCookie, ...headers } });
    },
  };
}
