import crypto, { randomBytes, createHash } from 'node:crypto';

/**
 * Letters and digits in ASCII order, so that ids sort by the time they were made. No
 * `-` or `_`: freezr's ids never hold them (its stores make letters and digits, or hex),
 * and freezr apps rely on that: Poster, by freezr's author, builds element ids such as
 * `click_gotoPost_<id>_title` and splits them on `_`, so a post whose id held one could
 * never be opened again.
 */
const SORTED_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const TIME_CHARS = 8; // 62^8 ms: until the year 8900
/** 17 characters of 62: 101 random bits, past CEPS.md's 96. */
const RANDOM_CHARS = 17;
/** Random bytes are drawn from the CSPRNG in blocks: one call per id costs more than the rest of the id. */
const POOL_BYTES = 8192;
let pool = Buffer.alloc(0);
let poolOffset = 0;

/** One uniformly random character: bytes past the last whole multiple of 62 are skipped, not folded (no bias). */
function randomChar(): string {
  for (;;) {
    if (poolOffset >= pool.length) {
      pool = randomBytes(POOL_BYTES);
      poolOffset = 0;
    }
    const b = pool[poolOffset++]!;
    if (b < 248) return SORTED_ALPHABET[b % 62]!;
  }
}

/**
 * A record id: 25 letters and digits, 8 encoding the creation time in ms and 17 random
 * (unguessable, CEPS.md §2). Time first makes new records land at the end of the
 * storage indexes instead of on random pages, which keeps a write's page churn, and so
 * its commit, small.
 */
export function newRecordId(now = Date.now()): string {
  let id = '';
  let t = now;
  for (let i = 0; i < TIME_CHARS; i++) {
    id = SORTED_ALPHABET[t % 62]! + id;
    t = Math.floor(t / 62);
  }
  for (let i = 0; i < RANDOM_CHARS; i++) id += randomChar();
  return id;
}

/** A secret token: 256 random bits, base64url. Only its hash is ever stored. */
export function newSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** sha256 hex of a secret, the form in which tokens are stored and looked up. */
/** Node's one-shot hash (20.12+): a third of createHash's cost, and every API request hashes its token. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

export function hashSecret(secret: string): string {
  return oneShotHash ? oneShotHash('sha256', secret, 'hex') : createHash('sha256').update(secret).digest('hex');
}
