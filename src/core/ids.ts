import { randomBytes, createHash } from 'node:crypto';

const ID_BYTES = 16;
const POOL_IDS = 512;
let pool = Buffer.alloc(0);
let poolOffset = 0;

/**
 * A record id: 128 random bits, base64url (22 chars), URL-safe and unguessable.
 * Random bytes are drawn from the CSPRNG in blocks: one call per id costs more than
 * the rest of a write's CPU work.
 */
export function newRecordId(): string {
  if (poolOffset + ID_BYTES > pool.length) {
    pool = randomBytes(ID_BYTES * POOL_IDS);
    poolOffset = 0;
  }
  const id = pool.toString('base64url', poolOffset, poolOffset + ID_BYTES);
  poolOffset += ID_BYTES;
  return id;
}

/** A secret token: 256 random bits, base64url. Only its hash is ever stored. */
export function newSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** sha256 hex of a secret, the form in which tokens are stored and looked up. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
