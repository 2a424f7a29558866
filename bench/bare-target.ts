/**
 * The HTTP ceiling: a bare Fastify JSON reply, GET and POST, in a process of its own.
 * Kept apart from target.ts so that it loads Fastify and nothing of freehold: its
 * idle RSS is the floor any Fastify server on this Node starts from.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));
app.post('/', async (request) => ({ _id: 'x', got: request.body !== undefined }));
await app.listen({ port: 0, host: '127.0.0.1' });
const addr = app.server.address();
process.send?.({ ready: { port: typeof addr === 'object' && addr ? addr.port : 0 } });
const shutdown = () => void app.close().finally(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
