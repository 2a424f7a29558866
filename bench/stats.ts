/** Latency summaries in milliseconds, at 0.01 ms resolution (autocannon's own histogram rounds to whole ms). */
export interface Latency {
  n: number;
  mean: number;
  p50: number;
  p99: number;
  max: number;
}

const round = (x: number) => Math.round(x * 100) / 100;

export function summarise(samples: ArrayLike<number>, count = samples.length): Latency {
  if (count === 0) return { n: 0, mean: 0, p50: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from({ length: count }, (_, i) => samples[i]!).sort();
  const at = (q: number) => sorted[Math.min(count - 1, Math.floor(q * count))]!;
  let sum = 0;
  for (const v of sorted) sum += v;
  return { n: count, mean: round(sum / count), p50: round(at(0.5)), p99: round(at(0.99)), max: round(sorted[count - 1]!) };
}

/** A growable buffer of float samples: hundreds of thousands of responses without boxing each. */
export class Samples {
  private buf = new Float64Array(1 << 16);
  length = 0;
  push(v: number): void {
    if (this.length === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = v;
  }
  summary(): Latency {
    return summarise(this.buf, this.length);
  }
}
