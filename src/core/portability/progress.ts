/**
 * Progress of an export or import, as plain numbers, so that the CLI (a progress
 * bar or log lines) and HTTP (logs) can each show it their own way. Core code
 * never decides how often anyone is told: callers throttle (see `throttled`).
 */
export interface Progress {
  /** export: writing the archive. verify: the import's read-only pass. write: the import's storing pass. */
  phase: 'export' | 'verify' | 'write';
  entriesDone: number;
  entriesTotal: number;
  bytesDone: number;
  /**
   * Known for imports (the manifest lists every size). For exports only the blobs'
   * sizes are known before they are read; record tables are counted as they stream,
   * so the total is a lower bound that grows as tables are written.
   */
  bytesTotal: number;
  /** The archive entry being read or written. */
  entry?: string;
}

export type ProgressCallback = (p: Progress) => void;

/** Counts entries and bytes for one phase and reports them. */
export class ProgressMeter {
  private readonly state: Progress;

  constructor(phase: Progress['phase'], entriesTotal: number, bytesTotal: number, private readonly report?: ProgressCallback) {
    this.state = { phase, entriesDone: 0, entriesTotal, bytesDone: 0, bytesTotal };
  }

  startEntry(entry: string): void {
    this.state.entry = entry;
    this.emit();
  }

  bytes(n: number): void {
    this.state.bytesDone += n;
    // Bytes of record tables are not known in advance: keep the total honest.
    if (this.state.bytesDone > this.state.bytesTotal) this.state.bytesTotal = this.state.bytesDone;
    this.emit();
  }

  /** An entry whose size was not part of bytesTotal (a record table, while exporting). */
  addToTotal(bytes: number): void {
    this.state.bytesTotal += bytes;
  }

  endEntry(): void {
    this.state.entriesDone++;
    this.emit();
  }

  get snapshot(): Progress {
    return { ...this.state };
  }

  private emit(): void {
    this.report?.({ ...this.state });
  }
}

/**
 * Wraps a callback so it fires at most every `intervalMs` (plus always at the end of
 * an entry count change to 100%), since a callback per chunk would flood a terminal.
 */
export function throttled(fn: ProgressCallback, intervalMs: number): ProgressCallback {
  let last = 0;
  return (p) => {
    const now = Date.now();
    const finished = p.entriesDone === p.entriesTotal;
    if (now - last >= intervalMs || finished) {
      last = now;
      fn(p);
    }
  };
}
