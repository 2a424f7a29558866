/**
 * argon2id with OWASP's recommended minimum (19 MiB, 2 passes). The native module
 * loads at the first hash or verify: a server that nobody signs in to does not keep it
 * resident (README "Performance", idle memory).
 */
type Argon2 = typeof import('@node-rs/argon2');
let argon2: Promise<Argon2> | undefined;
const loadArgon2 = (): Promise<Argon2> => (argon2 ??= import('@node-rs/argon2'));

async function options(): Promise<import('@node-rs/argon2').Options> {
  const { Algorithm } = await loadArgon2();
  return { algorithm: Algorithm.Argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 };
}

export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 1024;

export async function hashPassword(password: string): Promise<string> {
  const { hash } = await loadArgon2();
  return hash(password, await options());
}

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  const { verify } = await loadArgon2();
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}

/**
 * A hash of a fixed password, computed once, so that a sign-in for an unknown user
 * costs as much as one for a known user (no timing oracle for user ids).
 */
let dummyHash: Promise<string> | undefined;
export function dummyVerify(password: string): Promise<boolean> {
  dummyHash ??= hashPassword('freehold-dummy-password');
  return dummyHash.then((h) => verifyPassword(h, password)).then(() => false);
}
