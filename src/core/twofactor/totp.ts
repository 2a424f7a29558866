import { Secret, TOTP } from 'otpauth';

/**
 * RFC 6238 TOTP as every authenticator app speaks it: HMAC-SHA1, 6 digits, 30 s
 * steps. Codes one step either side of now are accepted (clock drift, typing time);
 * the caller refuses steps already used (see service.ts).
 */
export const TOTP_PERIOD_S = 30;
export const TOTP_DIGITS = 6;
export const TOTP_WINDOW = 1;
/** 160 bits: RFC 4226's recommended length for an HMAC-SHA1 key. */
const SECRET_BYTES = 20;

function totp(secretBase32: string, label = '', issuer = ''): TOTP {
  return new TOTP({
    issuer, label, algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD_S, secret: Secret.fromBase32(secretBase32),
  });
}

/** A fresh random secret, base32 (the form people type into an app). */
export function newTotpSecret(): string {
  return new Secret({ size: SECRET_BYTES }).base32;
}

/** The otpauth:// URI an authenticator app imports (as text or a QR code). */
export function otpauthUri(secretBase32: string, label: string, issuer: string): string {
  return totp(secretBase32, label, issuer).toString();
}

/** Digits only; people paste codes as "123 456". Anything else is no code. */
export function normaliseCode(code: string): string | null {
  const digits = code.replace(/[\s-]/g, '');
  return new RegExp(`^[0-9]{${TOTP_DIGITS}}$`).test(digits) ? digits : null;
}

/** The time step a code belongs to, within the window around `now`, or null when it matches none. */
export function matchStep(secretBase32: string, code: string, now = Date.now()): number | null {
  const digits = normaliseCode(code);
  if (!digits) return null;
  const t = totp(secretBase32);
  const delta = t.validate({ token: digits, timestamp: now, window: TOTP_WINDOW });
  return delta === null ? null : t.counter({ timestamp: now }) + delta;
}

/** The current code of a secret (tests, and nothing else in the server). */
export function codeAt(secretBase32: string, timestamp: number): string {
  return totp(secretBase32).generate({ timestamp });
}
