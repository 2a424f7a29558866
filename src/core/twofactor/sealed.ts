import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Authenticated encryption (AES-256-GCM) for small secrets kept in the host store,
 * under a key derived from the host secret. Each value is bound to a context
 * string (e.g. the user id) as associated data, so a ciphertext copied onto another
 * user's record does not decrypt there.
 *
 * What this protects against: anything that sees the sealed records without the
 * host secret (a copied table, an export, a log line, a backup of one folder).
 * What it does not: the host secret lives in the same store (system.secrets), so
 * a dump of the whole store carries both halves.
 */
const VERSION = 'v1';
const IV_BYTES = 12;
/** Fixed, so a forged short tag (which GCM would otherwise accept) is refused. */
const TAG_BYTES = 16;

export class SecretBox {
  private readonly key: Buffer;

  constructor(hostSecret: string, purpose: string) {
    // HKDF with a purpose label: this key is unrelated to any other use of the host secret.
    this.key = Buffer.from(hkdfSync('sha256', hostSecret, '', `freehold/${purpose}/${VERSION}`, 32));
  }

  seal(plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
  }

  /** The plaintext, or null when the value was not sealed by this key for this context (or was altered). */
  open(sealed: string, context: string): string | null {
    const [version, iv, tag, body] = sealed.split('.');
    if (version !== VERSION || !iv || !tag || body === undefined) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}
