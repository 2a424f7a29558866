import { Socket, type LookupFunction } from 'node:net';

/** How a network store makes its connections (PostgreSQL, S3). */
export interface StoreConnectOptions {
  /**
   * Resolves host names for every connection the store opens (net's `lookup`), in place
   * of the system resolver's plain answer: the host's rules for owners' own stores
   * (storage-policy.ts publicAddressesOnly) apply at each connection, not only when
   * the owner chose the address.
   */
  lookup?: LookupFunction;
}

/**
 * A socket factory for pg (its `stream` setting) whose TCP connections resolve names
 * through `lookup`. pg connects with `connect(port, host)`, which takes no lookup; any
 * other form (a Unix socket's path) is passed on unchanged.
 */
export function socketsUsing(lookup: LookupFunction): () => Socket {
  return () => {
    const socket = new Socket();
    const connect = socket.connect.bind(socket) as (...args: unknown[]) => Socket;
    socket.connect = ((...args: unknown[]) => {
      const [port, host] = args;
      if ((typeof port === 'number' || typeof port === 'string') && typeof host === 'string' && args.length === 2) {
        return connect({ port: Number(port), host, lookup });
      }
      return connect(...args);
    }) as Socket['connect'];
    return socket;
  };
}
