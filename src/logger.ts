import pino, { type Logger } from 'pino';
import { atTurnEnd } from './turn-end.js';
import { LineWriter } from './log-destination.js';

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
 * (LineWriter: flushed at 4 KB or after a second, and synchronously when the process
 * exits, including on an uncaught error): a synchronous write per line cost about a
 * fifth of CEPS read throughput (bench/, README "Performance"). A process killed with
 * SIGKILL can lose the last few KB of lines.
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
    // flushEveryMs: without it, a quiet server's last lines would wait for 4 KB more.
  }, destination ?? new LineWriter({ fd: 1, minLength: 4096, flushEveryMs: 1000 }));
}

/** What one access line says; every string is written JSON-escaped. */
export interface AccessLine {
  reqId: string;
  method: string;
  /** Already redacted (redactUrl). */
  url: string;
  ip: string;
  statusCode: number;
  responseTime: number;
}

/** Characters JSON.stringify would escape in a string (quote, backslash, controls, lone surrogates). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** `s` as a JSON string, as JSON.stringify writes it; quoted as it is when nothing in it needs escaping (the usual case, and cheaper). */
export function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

const accessWriters = new WeakMap<Logger, (line: AccessLine) => void>();
/** Access writers holding lines until their turn ends; the process writes them if it exits first. */
const heldLines = new Set<() => void>();
let exiting = false;
process.once('exit', () => {
  exiting = true;
  for (const release of [...heldLines]) release();
});

/**
 * Writes access lines for `log` straight to its destination, in exactly the JSON pino
 * would write for `log.info({ reqId, req, res, responseTime }, 'request completed')`
 * (level, time, the logger's bindings, the fields, msg), without pino's per-call
 * object walk: the line's shape is fixed, its fields are safe by construction (no
 * secrets: the URL comes redacted), so no serializer or redaction pass is needed.
 * That walk was about 6% of a CEPS read's CPU (bench/, README "Performance").
 *
 * The lines of one event-loop turn go to the destination together, when the turn
 * ends: one call into the destination for every request answered in the turn (what a
 * destination does per call, such as pino's own writer measuring all it holds, is paid
 * once). So an access line can follow a line logged later in the same turn; each
 * carries its time. Lines still held when the process exits are written then. The
 * caller checks the level.
 */
export function accessWriterOf(log: Logger): (line: AccessLine) => void {
  let write = accessWriters.get(log);
  if (!write) {
    // pino keeps its destination and its serialised bindings (pid, hostname, …) under these
    // symbols; sharing the destination keeps lines from interleaving mid-line.
    const own = log as unknown as Record<symbol, unknown>;
    const stream = own[pino.symbols.streamSym] as pino.DestinationStream & { flushSync?: () => void };
    const bindings = String(own[pino.symbols.chindingsSym] ?? '');
    const q = jsonString;
    let held = '';
    const release = (): void => {
      heldLines.delete(release);
      const lines = held;
      held = '';
      if (lines) stream.write(lines);
      // Written at exit, after pino's own last flush of this stream.
      if (exiting) {
        try {
          stream.flushSync?.();
        } catch {
          // A write still in flight: what it holds is written by it, or lost with the process.
        }
      }
    };
    write = (l) => {
      held += `{"level":30,"time":${Date.now()}${bindings},"reqId":${q(l.reqId)},"req":{"method":${q(l.method)},"url":${q(l.url)},"ip":${q(l.ip)}},` +
        `"res":{"statusCode":${l.statusCode}},"responseTime":${l.responseTime},"msg":"request completed"}\n`;
      if (!heldLines.has(release)) {
        heldLines.add(release);
        atTurnEnd(release);
      }
    };
    accessWriters.set(log, write);
  }
  return write;
}
