/** The server's version, reported by /ceps/ping and in app pages' freezrMeta. */
export const SERVER_VERSION = '0.1.0';
