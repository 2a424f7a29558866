/** The server's version: reported by /ceps/ping, app pages' freezrMeta and export archives. */
export const SERVER_VERSION = '0.1.0';
