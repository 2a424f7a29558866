import { constants } from 'node:fs';

/**
 * Opening read-only, without waiting. A named pipe left by hand under a name a store
 * reads (a record file, a blob, a sidecar) would otherwise block the open until some
 * writer came: on the event loop, the whole server; in the thread pool, one of its four
 * threads. Regular files read the same either way.
 */
export const READ_WITHOUT_WAITING = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);
