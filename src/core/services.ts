import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { StoreRegistry } from '../storage/registry.js';
import { openBlobStore, openRecordStore } from '../storage/urls.js';
import { AccountService } from './accounts/service.js';
import { SessionService } from './auth/sessions.js';
import { TokenService } from './auth/tokens.js';
import { loadHostSecret } from './auth/secrets.js';
import { AppService } from './apps/service.js';
import { RecordService } from './records/service.js';
import { FileService } from './files/service.js';
import { PermissionService } from './permissions/service.js';
import type { BackupService } from './backup/service.js';
import { QuotaService } from './quota/service.js';
import { TwoFactorService } from './twofactor/service.js';
import { defaultCheckpointer } from '../storage/sqlite/checkpointer.js';
import { checkOwnerChosenStore, publicAddressesOnly } from './storage-policy.js';
import { maskStoreUrl } from './storage-settings.js';

/**
 * Everything the HTTP layer and the CLI need, wired once. Nothing here knows HTTP.
 */
export interface Services {
  config: Config;
  log: Logger;
  stores: StoreRegistry;
  accounts: AccountService;
  sessions: SessionService;
  tokens: TokenService;
  twoFactor: TwoFactorService;
  apps: AppService;
  records: RecordService;
  files: FileService;
  permissions: PermissionService;
  quota: QuotaService;
  /** Present when a backup store is configured. */
  backups?: BackupService;
  close(): Promise<void>;
}

export async function createServices(config: Config, log: Logger): Promise<Services> {
  // A checkpoint worker that fails falls back to main-thread checkpoints; say so in the server's log.
  defaultCheckpointer.setLog(log);
  const records = openRecordStore(config.records);
  const blobs = openBlobStore(config.blobs);
  await records.init();
  await blobs.init();
  const stores = new StoreRegistry(records, blobs, {
    hostRecordsUrl: config.records, hostBlobsUrl: config.blobs, pollMs: config.storagePollMs,
    // Stores an owner chose answer to the host's rules each time they open and at each connection.
    ...(config.ownerStoragePrivate ? {} : { ownerChosen: { check: (url: string) => checkOwnerChosenStore(url, false), connect: { lookup: publicAddressesOnly() } } }),
    reopenMs: config.storageReopenMs,
    onUnreachable: (owner, error) => log.error({ owner, reason: maskStoreUrl(String((error as Error)?.message ?? error)) },
      "cannot open this owner's stores; their requests answer 503 until they open (FREEHOLD_STORAGE_REOPEN)"),
  });
  await stores.start();
  const quota = new QuotaService(stores, { bytes: config.quotaBytes, records: config.quotaRecords });
  stores.decorator = { records: (o, s) => quota.wrapRecords(o, s), blobs: (o, s) => quota.wrapBlobs(o, s) };
  const secret = await loadHostSecret(records);
  const tokens = new TokenService(records, secret, config.tokenCacheMs);
  const apps = new AppService(stores, tokens, config);
  const permissions = new PermissionService(stores, apps);
  // An app reaches another app's tables only as far as the owner's grants say (table-grants.ts).
  const recordService = new RecordService(stores, {
    grantsOf: (ownerId, appName) => permissions.list(ownerId, appName),
    installedApps: async (ownerId) => (await apps.list(ownerId)).map((a) => a.appName),
  });
  const services: Services = {
    config,
    log,
    stores,
    accounts: new AccountService(records),
    sessions: new SessionService(records, config.sessionTtlMs),
    tokens,
    // An operator-held key, when given, keeps TOTP secrets unreadable from a database copy alone.
    twoFactor: new TwoFactorService(records, config.encryptionKey || secret),
    apps,
    records: recordService,
    files: new FileService(stores, config),
    permissions,
    quota,
    close: async () => {
      await services.backups?.stop();
      await stores.close();
    },
  };
  if (config.backupBlobs) {
    // Imported only when configured: backups pull in the zip export and import.
    const { BackupService } = await import('./backup/service.js');
    const target = await stores.openBlobs(config.backupBlobs);
    services.backups = new BackupService(services, target, {
      keep: config.backupKeep, intervalMs: config.backupIntervalHours * 3600_000,
    });
  }
  return services;
}
