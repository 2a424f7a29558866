import pino, { type Logger } from 'pino';

const SECRET_PARAMS = /([?&](?:token|fileToken|password|app_password|access_token|code)=)[^&#]*/gi;

/** Strips secrets that may ride in query strings before a URL reaches a log line. */
export function redactUrl(url: string): string {
  return url.includes('?') ? url.replace(SECRET_PARAMS, '$1[redacted]') : url;
}

/**
 * Structured logs (pino). Request lines carry method, redacted URL and address only:
 * never headers, cookies, bodies or tokens.
 *
 * Without a destination, lines go to stdout through a buffered asynchronous writer
 * (flushed at 4 KB, and synchronously when the process exits, including on an uncaught
 * error): a synchronous write per line cost about a fifth of CEPS read throughput
 * (bench/, README "Performance"). A process killed with SIGKILL can lose the last
 * few KB of lines.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({
    level,
    // Named paths only: pino's wildcard paths cost ~5 µs on every line, and no line
    // carries nested bodies (the serializers below drop headers and bodies outright).
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'password', 'token', 'err.details.password'], censor: '[redacted]' },
    serializers: {
      req: (req: { method?: string; url?: string; ip?: string }) => ({ method: req.method, url: redactUrl(req.url ?? ''), ip: req.ip }),
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
    },
  }, destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096 }));
}

const accessLoggers = new WeakMap<Logger, Logger>();

/**
 * A lean sibling of `log` for access lines: same destination, level and base fields,
 * but no serializers and no redaction pass, because its caller builds every line
 * from fields it has already made safe (method, redacted URL, address, status).
 * Redaction and serializers were most of an access line's cost.
 */
export function accessLoggerOf(log: Logger): Logger {
  let access = accessLoggers.get(log);
  if (!access) {
    // pino keeps its destination under this symbol; sharing it keeps lines from interleaving mid-line.
    const stream = (log as unknown as Record<symbol, pino.DestinationStream>)[pino.symbols.streamSym];
    access = pino({ level: log.level }, stream);
    accessLoggers.set(log, access);
  }
  return access;
}
