/**
 * Fixed-window request counters, in process memory.
 *
 * A key (an address, a hashed token) may make `max` requests per window; the window
 * starts at the key's first request and the count starts again once it has passed.
 * A fixed window lets a client burst up to 2 × max across a window boundary; for
 * sign-in attempts and API quotas that bound is what matters, and it keeps each
 * check to one map lookup.
 *
 * The map is bounded: a client cycling through addresses cannot grow it without
 * limit. When it is full, expired windows go first, then the oldest windows; an
 * evicted key starts again from zero, which only ever errs on the client's side.
 */

export interface WindowHit {
  /** Requests made in the current window, this one included. */
  count: number;
  /** Epoch ms at which the window ends and the count starts again. */
  resetAt: number;
}

interface Window {
  count: number;
  resetAt: number;
}

export class RequestWindows {
  private readonly windows = new Map<string, Window>();

  constructor(
    readonly max: number,
    readonly windowMs: number,
    private readonly maxKeys = 10_000,
  ) {}

  /** Counts one request for `key`. The caller refuses it when `count > max`. */
  hit(key: string, now = Date.now()): WindowHit {
    let w = this.windows.get(key);
    if (!w || w.resetAt <= now) {
      if (w) this.windows.delete(key); // re-inserted below: Map order stays oldest-window-first
      else if (this.windows.size >= this.maxKeys) this.makeRoom(now);
      w = { count: 0, resetAt: now + this.windowMs };
      this.windows.set(key, w);
    }
    w.count++;
    return { count: w.count, resetAt: w.resetAt };
  }

  get size(): number {
    return this.windows.size;
  }

  private makeRoom(now: number): void {
    for (const [key, w] of this.windows) {
      if (w.resetAt <= now) this.windows.delete(key);
    }
    // Still full: drop the oldest tenth, so a flood pays for a sweep rarely, not per request.
    if (this.windows.size >= this.maxKeys) {
      let drop = Math.max(1, Math.floor(this.maxKeys / 10));
      for (const key of this.windows.keys()) {
        if (drop-- <= 0) break;
        this.windows.delete(key);
      }
    }
  }
}

/**
 * A bounded set of keys, forgetting the least recently added first when full. A
 * forgotten key is simply treated as new again.
 */
export class RecentKeys {
  private readonly keys = new Set<string>();

  constructor(private readonly maxKeys = 10_000) {}

  has(key: string): boolean {
    return this.keys.has(key);
  }

  add(key: string): void {
    if (this.keys.has(key)) return;
    if (this.keys.size >= this.maxKeys) this.keys.delete(this.keys.values().next().value!);
    this.keys.add(key);
  }
}

/**
 * The part of a client address a limit counts by. IPv4: the address. IPv6: its /64
 * prefix, since one host or home network is routinely given a whole /64 and could
 * otherwise take a fresh address per request. IPv4-mapped IPv6 (`::ffff:a.b.c.d`,
 * what a dual-stack socket reports for IPv4 clients) counts as the IPv4 address.
 */
export function addressKey(ip: string): string {
  if (!ip.includes(':')) return ip;
  const groups = ipv6Groups(ip);
  if (!groups) return ip;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address in any textual form; null if it is not one. */
export function ipv6Groups(text: string): number[] | null {
  let ip = text;
  const zone = ip.indexOf('%');
  if (zone >= 0) ip = ip.slice(0, zone);
  // A trailing dotted IPv4 part stands for the last two groups.
  const dotted = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (dotted) {
    const octets = dotted.slice(2, 6).map(Number);
    if (octets.some((o) => o > 255)) return null;
    ip = `${dotted[1]}${((octets[0]! << 8) | octets[1]!).toString(16)}:${((octets[2]! << 8) | octets[3]!).toString(16)}`;
  }
  const halves = ip.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  if (!head || !tail) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return null;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}
