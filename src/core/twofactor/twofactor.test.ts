import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SecretBox } from './sealed.js';
import { codeAt, matchStep, newTotpSecret, otpauthUri } from './totp.js';
import { newRecoveryCodes, normaliseRecoveryCode, recoveryCodeId } from './recovery-codes.js';

/** RFC 6238 appendix B's SHA1 key, "12345678901234567890", in base32. */
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

test('TOTP matches RFC 6238 test vectors (6-digit tail) and reports the step', () => {
  assert.equal(codeAt(RFC_SECRET, 59_000), '287082');
  assert.equal(codeAt(RFC_SECRET, 1_111_111_109_000), '081804');
  assert.equal(matchStep(RFC_SECRET, '287082', 59_000), 1);
  assert.equal(matchStep(RFC_SECRET, '287 082', 59_000), 1, 'spaces are ignored');
  assert.equal(matchStep(RFC_SECRET, '287082', 59_000 + 30_000), 1, 'one step late is accepted');
  assert.equal(matchStep(RFC_SECRET, '287082', 59_000 + 60_000), null, 'two steps late is not');
  assert.equal(matchStep(RFC_SECRET, '28708', 59_000), null);
  assert.equal(matchStep(RFC_SECRET, 'abcdef', 59_000), null);
});

test('secrets carry 160 bits and the URI names issuer, account and parameters', () => {
  const secret = newTotpSecret();
  assert.match(secret, /^[A-Z2-7]{32}$/);
  assert.notEqual(secret, newTotpSecret());
  const uri = new URL(otpauthUri(secret, 'alice', 'freehold (example.org)'));
  assert.equal(uri.protocol, 'otpauth:');
  assert.equal(uri.host, 'totp');
  assert.equal(decodeURIComponent(uri.pathname), '/freehold (example.org):alice');
  assert.equal(uri.searchParams.get('secret'), secret);
  assert.equal(uri.searchParams.get('algorithm'), 'SHA1');
  assert.equal(uri.searchParams.get('digits'), '6');
  assert.equal(uri.searchParams.get('period'), '30');
});

test('sealed values open only with the same key and context, and resist tampering', () => {
  const box = new SecretBox('host secret one', 'totp-secret');
  const sealed = box.seal('JBSWY3DPEHPK3PXP', 'totp|alice');
  assert.doesNotMatch(sealed, /JBSWY3DPEHPK3PXP/);
  assert.notEqual(sealed, box.seal('JBSWY3DPEHPK3PXP', 'totp|alice'), 'a fresh IV each time');
  assert.equal(box.open(sealed, 'totp|alice'), 'JBSWY3DPEHPK3PXP');
  assert.equal(box.open(sealed, 'totp|bob'), null, 'moved to another user');
  assert.equal(new SecretBox('host secret two', 'totp-secret').open(sealed, 'totp|alice'), null, 'another host');
  assert.equal(new SecretBox('host secret one', 'other').open(sealed, 'totp|alice'), null, 'another purpose');
  const [v, iv, tag, body] = sealed.split('.');
  const bytes = Buffer.from(body!, 'base64url');
  bytes[0] = bytes[0]! ^ 1;
  const flipped = bytes.toString('base64url');
  assert.equal(box.open([v, iv, tag, flipped].join('.'), 'totp|alice'), null, 'altered ciphertext');
  assert.equal(box.open([v, iv, tag!.slice(0, 6), body].join('.'), 'totp|alice'), null, 'truncated tag');
  assert.equal(box.open('garbage', 'totp|alice'), null);
});

test('recovery codes: ten, distinct, 80 bits, typed back in any case with or without dashes', () => {
  const codes = newRecoveryCodes();
  assert.equal(codes.length, 10);
  assert.equal(new Set(codes).size, 10);
  for (const c of codes) assert.match(c, /^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/);
  const raw = normaliseRecoveryCode(codes[0]!)!;
  assert.equal(normaliseRecoveryCode(codes[0]!.toUpperCase().replaceAll('-', ' ')), raw);
  assert.equal(normaliseRecoveryCode('too-short'), null);
  assert.equal(normaliseRecoveryCode('0000-0000-0000-0000'), null);
  assert.notEqual(recoveryCodeId('alice', raw), recoveryCodeId('bob', raw));
  assert.match(recoveryCodeId('alice', raw), /^[0-9a-f]{64}$/);
});
