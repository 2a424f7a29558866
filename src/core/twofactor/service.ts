import type { RecordStore, StoredRecord } from '../../storage/types.js';
import { FreeholdError } from '../errors.js';
import { SYSTEM_OWNER, SystemTable } from '../system-tables.js';
import { SecretBox } from './sealed.js';
import { newRecoveryCodes, normaliseRecoveryCode, recoveryCodeId } from './recovery-codes.js';

/**
 * The TOTP code (and its otpauth library), imported when a code is first made or
 * checked: a server whose owners do not use 2FA never needs it, and every sign-in
 * only asks whether 2FA is on, which is a record lookup.
 */
const totp = (): Promise<typeof import('./totp.js')> => import('./totp.js');

/** What a person offers as their second factor: a TOTP code or a recovery code. */
export interface SecondFactor {
  totp?: string | undefined;
  recoveryCode?: string | undefined;
}

export interface TwoFactorStatus {
  enabled: boolean;
  pending: boolean;
  recoveryCodesLeft: number;
}

/**
 * One record per user in system.totp. Secrets are sealed (see sealed.ts) with the
 * user id as context. `pending` is a secret shown to the owner but not yet proven
 * with a code; `secret` is the one sign-in checks.
 */
interface TotpRecord extends StoredRecord {
  secret?: string;
  pending?: string;
  enabled_at?: number;
  /** The last time step accepted: codes of this step or earlier are refused (RFC 6238 §5.2). */
  last_step?: number;
}

const ALL = { sort: [], skip: 0, limit: 100000 };

/**
 * TOTP two-factor sign-in with recovery codes. Knows nothing of HTTP: the routes
 * check the password and the session, then call in here.
 */
export class TwoFactorService {
  private readonly box: SecretBox;

  constructor(private readonly store: RecordStore, hostSecret: string) {
    this.box = new SecretBox(hostSecret, 'totp-secret');
  }

  private async record(userId: string): Promise<TotpRecord | null> {
    return (await this.store.get(SYSTEM_OWNER, SystemTable.totp, userId)) as TotpRecord | null;
  }

  private open(sealed: string | undefined, userId: string): string | null {
    return sealed === undefined ? null : this.box.open(sealed, `totp|${userId}`);
  }

  async status(userId: string): Promise<TwoFactorStatus> {
    const r = await this.record(userId);
    const left = r?.secret ? await this.store.count(SYSTEM_OWNER, SystemTable.recoveryCodes, { op: 'eq', path: ['user_id'], value: userId }) : 0;
    return { enabled: !!r?.secret, pending: !!r?.pending, recoveryCodesLeft: left };
  }

  async isEnabled(userId: string): Promise<boolean> {
    return !!(await this.record(userId))?.secret;
  }

  /**
   * Starts enrolment: a new secret, kept pending (and replacing any older pending
   * one) until confirm() sees a code made from it. Refused while 2FA is on, so a
   * stolen session cannot quietly swap the secret: disable first (which asks for
   * the password and a code).
   */
  async beginSetup(userId: string, issuer: string): Promise<{ secret: string; uri: string }> {
    const r = await this.record(userId);
    if (r?.secret) throw new FreeholdError('conflict', 'Two-factor sign-in is already on; turn it off first to set up a new app');
    const { newTotpSecret, otpauthUri } = await totp();
    const secret = newTotpSecret();
    const now = Date.now();
    const pending = this.box.seal(secret, `totp|${userId}`);
    await this.store.put(SYSTEM_OWNER, SystemTable.totp, {
      _id: userId, _date_created: r?._date_created ?? now, _date_modified: now, pending,
    } satisfies TotpRecord);
    return { secret, uri: otpauthUri(secret, userId, issuer) };
  }

  /** Turns 2FA on once the owner proves their app has the pending secret; returns the first recovery codes. */
  async confirm(userId: string, code: string, now = Date.now()): Promise<string[]> {
    const r = await this.record(userId);
    if (r?.secret) throw new FreeholdError('conflict', 'Two-factor sign-in is already on');
    const secret = this.open(r?.pending, userId);
    if (!r || !secret) throw new FreeholdError('bad_request', 'Start the set-up first');
    const step = (await totp()).matchStep(secret, code, now);
    if (step === null) throw new FreeholdError('forbidden', 'That code does not match; check the app and try again');
    // The confirming code counts as used: it cannot sign in afterwards.
    const enabled: TotpRecord = {
      _id: userId, _date_created: r._date_created, _date_modified: Math.max(now, r._date_modified + 1),
      secret: r.pending!, enabled_at: now, last_step: step,
    };
    if (!(await this.store.replace(SYSTEM_OWNER, SystemTable.totp, enabled))) throw new FreeholdError('conflict', 'Set-up was cancelled meanwhile');
    return this.replaceRecoveryCodes(userId);
  }

  /**
   * Checks a TOTP code and consumes its time step. A step is claimed by creating
   * `<user>:<step>` in system.totp_steps, which the store refuses for an existing
   * id: of two racing requests with one code, exactly one wins. `last_step` then
   * also refuses older codes still inside the window.
   */
  async verifyTotp(userId: string, code: string, now = Date.now()): Promise<boolean> {
    const r = await this.record(userId);
    const secret = this.open(r?.secret, userId);
    if (!r || !secret) return false;
    const step = (await totp()).matchStep(secret, code, now);
    if (step === null || (r.last_step !== undefined && step <= r.last_step)) return false;
    try {
      await this.store.create(SYSTEM_OWNER, SystemTable.totpSteps, {
        _id: `${userId}:${step}`, _date_created: now, _date_modified: now, user_id: userId, step,
      });
    } catch (err) {
      if (err instanceof FreeholdError && err.code === 'conflict') return false;
      throw err;
    }
    const latest = await this.record(userId);
    if (latest?.secret) {
      await this.store.replace(SYSTEM_OWNER, SystemTable.totp, {
        ...latest, last_step: Math.max(step, latest.last_step ?? step), _date_modified: Math.max(now, latest._date_modified + 1),
      });
    }
    // The previous step's marker is now redundant: last_step refuses it.
    if (r.last_step !== undefined) await this.store.delete(SYSTEM_OWNER, SystemTable.totpSteps, `${userId}:${r.last_step}`);
    return true;
  }

  /** Uses up one recovery code. Deleting it is the check, so it works once even under racing requests. */
  async useRecoveryCode(userId: string, code: string): Promise<boolean> {
    const normalised = normaliseRecoveryCode(code);
    if (!normalised || !(await this.isEnabled(userId))) return false;
    return (await this.store.delete(SYSTEM_OWNER, SystemTable.recoveryCodes, recoveryCodeId(userId, normalised))) !== null;
  }

  /** Either factor; a TOTP code is tried when both are given. */
  async verify(userId: string, factor: SecondFactor): Promise<boolean> {
    if (factor.totp !== undefined) return this.verifyTotp(userId, factor.totp);
    if (factor.recoveryCode !== undefined) return this.useRecoveryCode(userId, factor.recoveryCode);
    return false;
  }

  /**
   * The sign-in gate, after the password matched. No factor offered: `totp_required`
   * (which tells a caller the password was right; see the login route for why
   * that is acceptable). A wrong or used one: `unauthorized`.
   */
  async checkSignIn(userId: string, factor: SecondFactor): Promise<void> {
    if (!(await this.isEnabled(userId))) return;
    if (factor.totp === undefined && factor.recoveryCode === undefined) {
      throw new FreeholdError('totp_required', 'Enter the code from your authenticator app, or a recovery code');
    }
    if (!(await this.verify(userId, factor))) throw new FreeholdError('unauthorized', 'Wrong or already used code');
  }

  /** A fresh set of recovery codes; the old ones stop working in the same write. */
  async replaceRecoveryCodes(userId: string): Promise<string[]> {
    const now = Date.now();
    const codes = newRecoveryCodes();
    const old = await this.store.query(SYSTEM_OWNER, SystemTable.recoveryCodes, { op: 'eq', path: ['user_id'], value: userId }, ALL);
    await this.store.batch(SYSTEM_OWNER, [
      ...old.map((o) => ({ kind: 'delete' as const, table: SystemTable.recoveryCodes, id: o._id })),
      ...codes.map((c) => ({
        kind: 'put' as const, table: SystemTable.recoveryCodes,
        record: { _id: recoveryCodeId(userId, normaliseRecoveryCode(c)!), _date_created: now, _date_modified: now, user_id: userId },
      })),
    ]);
    return codes;
  }

  /**
   * Turns 2FA off and forgets everything about it. The caller has checked the
   * password and a code (owner), or is the admin's CLI (reset).
   */
  async disable(userId: string): Promise<boolean> {
    const where = { op: 'eq', path: ['user_id'], value: userId } as const;
    const [codes, steps] = await Promise.all([
      this.store.query(SYSTEM_OWNER, SystemTable.recoveryCodes, where, ALL),
      this.store.query(SYSTEM_OWNER, SystemTable.totpSteps, where, ALL),
    ]);
    const had = await this.store.delete(SYSTEM_OWNER, SystemTable.totp, userId);
    const ops = [
      ...codes.map((o) => ({ kind: 'delete' as const, table: SystemTable.recoveryCodes, id: o._id })),
      ...steps.map((o) => ({ kind: 'delete' as const, table: SystemTable.totpSteps, id: o._id })),
    ];
    if (ops.length) await this.store.batch(SYSTEM_OWNER, ops);
    return had !== null;
  }
}
