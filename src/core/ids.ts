import { randomBytes, createHash } from 'node:crypto';

/** A record id: 128 random bits, base64url (22 chars), URL-safe and unguessable. */
export function newRecordId(): string {
  return randomBytes(16).toString('base64url');
}

/** A secret token: 256 random bits, base64url. Only its hash is ever stored. */
export function newSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** sha256 hex of a secret, the form in which tokens are stored and looked up. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
