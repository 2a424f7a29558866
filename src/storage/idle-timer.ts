/**
 * Tells a background thread's owner when the thread has had nothing to do for `idleMs`:
 * `touch()` at each request; `onIdle` runs once the last touch is `idleMs` old and
 * `busy()` says nothing is outstanding. One unref'd timer, re-armed only while touches
 * keep coming, so an idle process is never woken and never kept alive by it.
 */
export class IdleTimer {
  private timer: NodeJS.Timeout | null = null;
  private last = 0;

  constructor(private readonly idleMs: number, private readonly busy: () => boolean, private readonly onIdle: () => void) {}

  touch(): void {
    this.last = performance.now();
    this.timer ??= this.arm(this.idleMs);
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.timer = null;
      const idleFor = performance.now() - this.last;
      if (this.busy() || idleFor < this.idleMs) {
        this.timer = this.arm(Math.max(this.idleMs - idleFor, 10));
        return;
      }
      this.onIdle();
    }, ms);
    timer.unref();
    return timer;
  }
}
