import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify';
// Types only: the plugin is imported when the document is first asked for. The type
// import also keeps its schema keywords (tags, summary, hide…) known to the routes.
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';

/**
 * GET /openapi.json, built on its first request instead of at start-up.
 *
 * @fastify/swagger records every route as it is declared and builds the document from
 * those records when asked. Registered up front it also loads a YAML library and a
 * JSON-schema resolver (about 90 modules, 0.8 MB of live heap) into every server,
 * for a document that API explorers and the route fuzz tests ask for now and then.
 *
 * So this records the routes the same way (the `onRoute` options, kept by reference as
 * the plugin keeps them, and the shared schemas at ready), and on the first request
 * declares them again on a scratch Fastify instance that has the plugin, takes its
 * document and closes it. Only the document (and the loaded modules) stay.
 */
export function lazyOpenApi(app: FastifyInstance, options: FastifyDynamicSwaggerOptions): () => Promise<unknown> {
  const routes: RouteOptions[] = [];
  const instances: FastifyInstance[] = [];
  const shared = new Map<string, unknown>();
  app.addHook('onRoute', (route) => {
    routes.push(route);
  });
  app.addHook('onRegister', (instance) => {
    instances.push(instance);
  });
  // As the plugin does: schemas added with addSchema, by $id, the root's last.
  app.addHook('onReady', async () => {
    for (const instance of [...instances, app]) {
      for (const [id, schema] of Object.entries(instance.getSchemas())) shared.set(id, schema);
    }
    instances.length = 0;
  });

  let doc: Promise<unknown> | undefined;
  return () => {
    // A failed build is not cached: the next request tries again.
    doc ??= build(routes, shared, options).catch((err: unknown) => {
      doc = undefined;
      throw err;
    });
    return doc;
  };
}

async function build(routes: RouteOptions[], shared: Map<string, unknown>, options: FastifyDynamicSwaggerOptions): Promise<unknown> {
  const [{ default: Fastify }, { default: swagger }] = await Promise.all([import('fastify'), import('@fastify/swagger')]);
  const scratch = Fastify({ logger: false });
  try {
    // The routes are never called here: no validator or serialiser is worth compiling.
    scratch.setValidatorCompiler(() => () => true);
    scratch.setSerializerCompiler(() => (data) => JSON.stringify(data));
    for (const schema of shared.values()) scratch.addSchema(schema);
    await scratch.register(swagger, options);
    for (const r of routes) {
      // What the plugin reads of a route; HEAD routes Fastify added for GETs were recorded
      // too, so none are added again here.
      scratch.route({
        method: r.method, url: r.url, handler: noop, exposeHeadRoute: false,
        ...(r.schema ? { schema: r.schema as FastifySchema } : {}),
        ...(r.config ? { config: r.config } : {}),
        ...(r.constraints ? { constraints: r.constraints } : {}),
        ...(r.links ? { links: r.links } : {}),
      });
    }
    await scratch.ready();
    return scratch.swagger();
  } finally {
    await scratch.close();
  }
}

async function noop(): Promise<void> {}
