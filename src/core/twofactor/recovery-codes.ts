import { createHash, randomInt } from 'node:crypto';

/**
 * Recovery codes: 16 characters of base32 (80 random bits), shown as
 * `abcd-efgh-ijkl-mnop`. They are stored as sha256, not argon2id: a slow hash
 * defends guessable human passwords, whereas 2^80 CSPRNG-drawn values cannot be
 * enumerated whatever the hash costs. A fast, deterministic hash also lets the
 * hash itself be the record id, so using a code is one atomic delete.
 */
export const RECOVERY_CODE_COUNT = 10;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const LENGTH = 16;

export function newRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  return Array.from({ length: count }, () => {
    let raw = '';
    for (let i = 0; i < LENGTH; i++) raw += ALPHABET[randomInt(ALPHABET.length)];
    return raw.match(/.{4}/g)!.join('-');
  });
}

/** Case, spaces and dashes don't matter when typing a code back; anything else is no code. */
export function normaliseRecoveryCode(code: string): string | null {
  const raw = code.toLowerCase().replace(/[\s-]/g, '');
  return raw.length === LENGTH && [...raw].every((c) => ALPHABET.includes(c)) ? raw : null;
}

/** The stored form, bound to the user so one user's code is nothing for another. */
export function recoveryCodeId(userId: string, normalised: string): string {
  return createHash('sha256').update(`recovery|${userId}|${normalised}`).digest('hex');
}
