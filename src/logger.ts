import pino, { type Logger } from 'pino';

const SECRET_PARAMS = /([?&](?:token|fileToken|password|app_password|access_token|code)=)[^&#]*/gi;

/** Strips secrets that may ride in query strings before a URL reaches a log line. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_PARAMS, '$1[redacted]');
}

/**
 * Structured logs (pino). Request lines carry method, redacted URL and address only:
 * never headers, cookies, bodies or tokens.
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
  }, destination);
}
