import { throttled, type Progress, type ProgressCallback } from '../core/portability/progress.js';

/** Progress of the commands that write or read an archive: export, import, backup run and restore. */

const MB = 1024 * 1024;
export const mb = (bytes: number) => (bytes / MB).toFixed(1);

/**
 * A progress bar on stderr when it is a terminal; otherwise a line every few
 * seconds (logs and CI keep those, and a bar's carriage returns make them unreadable).
 */
export async function progressReporter(): Promise<{ report: ProgressCallback; stop(): void }> {
  if (process.stderr.isTTY) {
    const { Presets, SingleBar } = await import('cli-progress');
    const bar = new SingleBar({
      format: '{phase} [{bar}] {percentage}% | {doneMb}/{totalMb} MB | {entries} entries',
      hideCursor: true, stream: process.stderr,
    }, Presets.shades_classic);
    let phase: Progress['phase'] | null = null;
    return {
      report: (p) => {
        const payload = { phase: p.phase.padEnd(6), doneMb: mb(p.bytesDone), totalMb: mb(p.bytesTotal), entries: `${p.entriesDone}/${p.entriesTotal}` };
        // Bytes drive the bar; entries before any byte (an archive of empty tables) still move it.
        const total = Math.max(p.bytesTotal, 1);
        if (phase !== p.phase) {
          if (phase !== null) bar.stop();
          bar.start(total, p.bytesDone, payload);
          phase = p.phase;
        }
        bar.setTotal(total);
        bar.update(p.bytesDone, payload);
      },
      stop: () => {
        if (phase !== null) bar.stop();
        phase = null;
      },
    };
  }
  const line: ProgressCallback = (p) => {
    process.stderr.write(`${p.phase}: ${p.entriesDone}/${p.entriesTotal} entries, ${mb(p.bytesDone)}/${mb(p.bytesTotal)} MB\n`);
  };
  return { report: throttled(line, 2000), stop: () => {} };
}
