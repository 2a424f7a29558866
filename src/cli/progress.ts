import { SingleBar, Presets } from 'cli-progress';

/**
 * Progress for long CLI work: a bar on a terminal, one line per step otherwise (logs,
 * CI, pipes), always on stderr so stdout stays for results.
 */
export class Progress {
  private bar: SingleBar | undefined;
  private label = '';
  private lastLine = 0;

  update(label: string, done: number, total: number): void {
    if (process.stderr.isTTY) {
      if (label !== this.label) {
        this.bar?.stop();
        this.bar = new SingleBar({ format: `${label.padEnd(10)} [{bar}] {value}/{total}`, hideCursor: true }, Presets.shades_classic);
        this.bar.start(Math.max(total, 1), done);
        this.label = label;
      }
      this.bar!.setTotal(Math.max(total, 1));
      this.bar!.update(done);
      return;
    }
    const now = Date.now();
    if (label !== this.label || done === total || now - this.lastLine > 1000) {
      process.stderr.write(`${label}: ${done}/${total}\n`);
      this.label = label;
      this.lastLine = now;
    }
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
