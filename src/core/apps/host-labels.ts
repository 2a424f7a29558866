import type { RecordStore, StoredRecord } from '../../storage/types.js';
import { SYSTEM_OWNER, SystemTable } from '../system-tables.js';

interface HostLabelRecord extends StoredRecord {
  owner_id: string;
  app_name: string;
}

/**
 * Remembers which (owner, app) a hashed app host label names. A readable label is
 * decoded from the host itself; a hashed one (an app name and user id too long for one
 * DNS label) cannot be, so the label is written here before the first visit sends a
 * browser to it. Kept in the host store so every process resolves it the same way.
 */
export class AppHostLabels {
  constructor(private readonly store: RecordStore) {}

  async remember(label: string, ownerId: string, appName: string): Promise<void> {
    const existing = (await this.store.get(SYSTEM_OWNER, SystemTable.appHosts, label)) as HostLabelRecord | null;
    if (existing && existing.owner_id === ownerId && existing.app_name === appName) return;
    const now = Date.now();
    await this.store.put(SYSTEM_OWNER, SystemTable.appHosts, {
      _id: label, _date_created: existing?._date_created ?? now, _date_modified: now, owner_id: ownerId, app_name: appName,
    } satisfies HostLabelRecord);
  }

  async find(label: string): Promise<{ owner: string; app: string } | null> {
    const r = (await this.store.get(SYSTEM_OWNER, SystemTable.appHosts, label)) as HostLabelRecord | null;
    return r ? { owner: r.owner_id, app: r.app_name } : null;
  }
}
