/**
 * s3rver in a process of its own for the postgres+s3 rows (in the bench process it
 * would share an event loop with the load generator). Sends over IPC a
 * blob-store URL template, `__BUCKET__` standing for the bucket name.
 */
import { startS3Server } from '../test/helpers/s3.js';

const s3 = await startS3Server();
process.send?.({ ready: { endpoint: s3.endpoint, urlTemplate: s3.url('__BUCKET__') } });
const shutdown = () => void s3.close().finally(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
