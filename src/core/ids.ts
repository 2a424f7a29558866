import crypto, { randomBytes, createHash } from 'node:crypto';

/** base64url's characters in ASCII order, so that ids sort by the time they were made. */
const SORTED_ALPHABET = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
const RANDOM_BYTES = 12;
const POOL_IDS = 512;
let pool = Buffer.alloc(0);
let poolOffset = 0;

/**
 * A record id: 24 URL-safe characters, 8 encoding the creation time in ms and 16
 * encoding 96 random bits (unguessable, CEPS.md §2). Time first makes new records
 * land at the end of the storage indexes instead of on random pages, which keeps a
 * write's page churn, and so its commit, small. Random bytes come from the CSPRNG
 * in blocks: one call per id costs more than the rest of the id.
 */
export function newRecordId(now = Date.now()): string {
  if (poolOffset + RANDOM_BYTES > pool.length) {
    pool = randomBytes(RANDOM_BYTES * POOL_IDS);
    poolOffset = 0;
  }
  let id = '';
  let t = now;
  for (let i = 7; i >= 0; i--) {
    id = SORTED_ALPHABET[t % 64]! + id;
    t = Math.floor(t / 64);
  }
  for (let i = 0; i < RANDOM_BYTES; i += 3) {
    const n = (pool[poolOffset + i]! << 16) | (pool[poolOffset + i + 1]! << 8) | pool[poolOffset + i + 2]!;
    id += SORTED_ALPHABET[(n >> 18) & 63]! + SORTED_ALPHABET[(n >> 12) & 63]! + SORTED_ALPHABET[(n >> 6) & 63]! + SORTED_ALPHABET[n & 63]!;
  }
  poolOffset += RANDOM_BYTES;
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
