import fs from 'node:fs';

/** How long to wait before writing again to a non-blocking descriptor that was full (EAGAIN). */
const BUSY_RETRY_MS = 20;
/** How long `flushSync` keeps retrying a full descriptor before it gives the lines up. */
const SYNC_PATIENCE_MS = 2_000;

export interface LineWriterOptions {
  /** File descriptor written to (1: stdout). */
  fd: number;
  /** Characters held before a write starts. */
  minLength?: number;
  /** Held lines are written at least this often (ms), however few. */
  flushEveryMs?: number;
  /** Characters held at most while the descriptor does not keep up; lines beyond are dropped and counted. */
  maxPending?: number;
}

const open = new Set<LineWriter>();
let exitHooked = false;

/**
 * pino's destination for the server's logs: lines are held and written together,
 * asynchronously, on a file descriptor (stdout), and synchronously at exit.
 *
 * It replaces pino's own buffered writer (sonic-boom) because of what that costs per
 * byte: it measured the UTF-8 length of its whole held buffer on every write and
 * encoded every string twice (once to write it, once more to cut off what was written),
 * together ~35k instructions per CEPS read, a fifth of the server's work for one
 * (callgrind, README "Performance"). Here a string is encoded once, when its write
 * starts, and what a partial write leaves is a slice of those bytes.
 *
 * Lines are never interleaved mid-line with each other: one write is in flight at a
 * time, in order. A descriptor that fails (EPIPE, ENOSPC) loses the lines of that
 * write and is tried again with the next; its first failure is said on stderr once.
 * A process killed with SIGKILL loses what was held (at most `minLength` characters
 * or a second of lines).
 */
export class LineWriter {
  private readonly fd: number;
  private readonly minLength: number;
  private readonly maxPending: number;
  private pending: string[] = [];
  private pendingChars = 0;
  private inFlight: Buffer | null = null;
  private waiting: Array<(err?: Error) => void> = [];
  private dropped = 0;
  private failureSaid = false;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(options: LineWriterOptions) {
    this.fd = options.fd;
    this.minLength = options.minLength ?? 4096;
    this.maxPending = options.maxPending ?? 16 * 1024 * 1024;
    const every = options.flushEveryMs ?? 1000;
    if (every > 0) {
      this.timer = setInterval(() => this.flush(), every);
      this.timer.unref();
    }
    open.add(this);
    if (!exitHooked) {
      exitHooked = true;
      process.once('exit', () => {
        for (const writer of open) writer.flushSync();
      });
    }
  }

  /** Takes one or more whole lines. Returns false when they were dropped (the descriptor is not keeping up). */
  write(chunk: string): boolean {
    if (this.pendingChars + chunk.length > this.maxPending) {
      this.dropped += chunk.split('\n').length - 1 || 1;
      return false;
    }
    if (this.dropped > 0) this.noteDropped();
    this.pending.push(chunk);
    this.pendingChars += chunk.length;
    if (this.inFlight === null && this.pendingChars >= this.minLength) this.startWrite();
    return true;
  }

  /** Starts writing what is held now; `done` is called once it is written (or lost). */
  flush(done?: (err?: Error) => void): void {
    if (done) this.waiting.push(done);
    if (this.inFlight !== null) return;
    if (this.pendingChars > 0) this.startWrite();
    else this.settle();
  }

  /**
   * Writes what is held now, synchronously (at exit). A write already in flight is
   * left to the thread doing it: its lines may land after these.
   */
  flushSync(): void {
    if (this.pendingChars === 0) return;
    let bytes = this.takePending();
    const giveUpAt = Date.now() + SYNC_PATIENCE_MS;
    while (bytes.length > 0) {
      try {
        bytes = bytes.subarray(fs.writeSync(this.fd, bytes));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN' && Date.now() < giveUpAt) {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
          continue;
        }
        this.sayFailure(err as Error);
        return;
      }
    }
  }

  /** Stops the periodic flush and writes what is held (tests and short-lived commands). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    open.delete(this);
    this.flushSync();
  }

  private takePending(): Buffer {
    const text = this.pending.length === 1 ? this.pending[0]! : this.pending.join('');
    this.pending = [];
    this.pendingChars = 0;
    return Buffer.from(text, 'utf8');
  }

  private startWrite(): void {
    this.writeOut(this.takePending());
  }

  private writeOut(bytes: Buffer): void {
    this.inFlight = bytes;
    fs.write(this.fd, bytes, 0, bytes.length, null, (err, written) => this.afterWrite(err, written));
  }

  private afterWrite(err: NodeJS.ErrnoException | null, written: number): void {
    const bytes = this.inFlight!;
    if (err) {
      if (err.code === 'EAGAIN') {
        // A non-blocking pipe that is full: its reader is behind; try again shortly.
        setTimeout(() => this.writeOut(bytes), BUSY_RETRY_MS).unref();
        return;
      }
      this.sayFailure(err);
    } else if (written < bytes.length) {
      this.writeOut(bytes.subarray(written));
      return;
    }
    this.inFlight = null;
    if (this.pendingChars >= this.minLength || (this.waiting.length > 0 && this.pendingChars > 0)) this.startWrite();
    else this.settle(err ?? undefined);
  }

  private settle(err?: Error): void {
    if (this.waiting.length === 0) return;
    const waiting = this.waiting;
    this.waiting = [];
    for (const done of waiting) done(err);
  }

  private noteDropped(): void {
    const line = JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, msg: `${this.dropped} log lines were dropped: the log destination did not keep up` });
    this.dropped = 0;
    this.pending.push(`${line}\n`);
    this.pendingChars += line.length + 1;
  }

  private sayFailure(err: Error): void {
    if (this.failureSaid) return;
    this.failureSaid = true;
    try {
      fs.writeSync(2, `freehold: writing the log to descriptor ${this.fd} failed (${(err as NodeJS.ErrnoException).code ?? err.message}); lines are being lost\n`);
    } catch {
      // stderr is gone too: nothing left to tell.
    }
  }
}
