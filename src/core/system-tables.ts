/**
 * Host-level state (accounts, sessions, tokens, secrets) lives in the host's
 * RecordStore under a reserved owner, so that every backend that can hold
 * records can hold it too, and several processes on one shared store agree
 * (nothing that matters is kept only in a process's memory).
 * None of these tables is reachable through CEPS: their names start with
 * `system.`, which no app may use.
 */
export const SYSTEM_OWNER = '_system';

export const SystemTable = {
  users: 'system.users',
  sessions: 'system.sessions',
  tokens: 'system.tokens',
  secrets: 'system.secrets',
  setup: 'system.setup',
  /** Two-factor state per user (sealed TOTP secret, last used step). */
  totp: 'system.totp',
  /** TOTP steps already used, `<user>:<step>`: creating one is the atomic claim of a code. */
  totpSteps: 'system.totp_steps',
  /** Unused recovery codes, by sha256. */
  recoveryCodes: 'system.recovery_codes',
  /** Hashed app host labels (too long to read back), by label: which (owner, app) each names. */
  appHosts: 'system.app_hosts',
} as const;

/** Whether `table` is one of the server's own (never an app's): app tables cannot start with `system.`. */
export function isSystemTable(table: string): boolean {
  return table.startsWith('system.');
}

/** Per-owner internal tables, kept in the owner's own store so that export takes them along. */
export const OwnerTable = {
  apps: 'system.apps',
  /** The owner's grants of app-declared permissions. */
  permissions: 'system.permissions',
  /**
   * Apps not installed here whose tables may still be theirs, by app name: apps removed
   * with their data kept, and apps served elsewhere that were given access (an app
   * password or an OAuth code). The app-name clash rule (AppService.assertNoNameClash)
   * counts them while a table of theirs is left.
   */
  keptApps: 'system.kept_apps',
} as const;
