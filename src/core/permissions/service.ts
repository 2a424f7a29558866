import type { StoreRegistry } from '../../storage/registry.js';
import type { StoredRecord } from '../../storage/types.js';
import type { AppService } from '../apps/service.js';
import type { Permission } from '../apps/manifest.js';
import { FreeholdError } from '../errors.js';
import { assertAppName } from '../names.js';
import { OwnerTable } from '../system-tables.js';

export interface PermissionState extends Permission {
  granted: boolean;
  grantees: string[];
  /** Allowed once, for what the permission said then; an update of the app changed it, so it is off until allowed again. */
  lapsed: boolean;
}

export interface PermissionChange {
  name: string;
  requestor_app: string;
  action: 'Accept' | 'Deny';
  table_id?: string | string[] | null;
}

interface GrantRecord extends StoredRecord {
  requestor_app: string;
  name: string;
  granted: boolean;
  /** What the permission covered when the owner decided (scopeOf); absent on grants made before it was kept. */
  scope?: string;
}

/**
 * What a permission lets its app do, as one comparable text: its type, tables, hosts and
 * fields, not its wording. A grant holds only while the installed manifest still says
 * the same: an update that widens a permission (another host to send data to, another
 * table) must ask the owner again, and so, simply, does any change of what it covers.
 */
export function scopeOf(p: Permission): string {
  const sorted = (list: string[] | undefined) => (list ? [...list].sort() : []);
  return JSON.stringify([p.type, sorted(p.table_id), sorted(p.hosts), sorted(p.return_fields), sorted(p.search_fields)]);
}

/**
 * The owner's decisions on the permissions apps declare. A permission exists only in
 * an installed app's manifest; the owner's grant is kept beside it in the owner's own
 * store (so export takes it along) and is read fresh on every check, so a revocation
 * takes effect at once. What a grant unlocks (sharing, messages) is decided where
 * those features live; this service only answers "is it granted?".
 */
export class PermissionService {
  constructor(private readonly stores: StoreRegistry, private readonly apps: AppService) {
    apps.onRemove((ownerId, app) => this.forgetApp(ownerId, app));
  }

  private static grantId(app: string, name: string): string {
    return `${app}/${name}`;
  }

  async list(ownerId: string, appName: string): Promise<PermissionState[]> {
    const declared = await this.apps.permissions(ownerId, appName);
    if (declared.length === 0) return [];
    const store = this.stores.records(ownerId);
    const grants = (await store.query(ownerId, OwnerTable.permissions, { op: 'eq', path: ['requestor_app'], value: appName },
      { sort: [], skip: 0, limit: 10000 })) as GrantRecord[];
    const byName = new Map(grants.map((g) => [g.name, g]));
    return declared.map((p) => {
      const g = byName.get(p.name);
      const sameScope = g?.scope === undefined || g.scope === scopeOf(p);
      return { ...p, granted: g?.granted === true && sameScope, grantees: p.grantees ?? [], lapsed: g?.granted === true && !sameScope };
    });
  }

  async isGranted(ownerId: string, appName: string, name: string): Promise<boolean> {
    return (await this.list(ownerId, appName)).some((p) => p.name === name && p.granted);
  }

  /** Accepts or denies one declared permission; refuses names the app never declared. */
  async change(ownerId: string, change: PermissionChange): Promise<PermissionState> {
    const app = assertAppName(change.requestor_app);
    const declared = (await this.list(ownerId, app)).find((p) => p.name === change.name);
    if (!declared) throw new FreeholdError('not_found', `App ${app} declares no permission named ${change.name}`);
    const tables = change.table_id == null ? [] : Array.isArray(change.table_id) ? change.table_id : [change.table_id];
    if (tables.some((t) => !declared.table_id.includes(t))) {
      throw new FreeholdError('bad_request', `Permission ${change.name} does not cover table ${tables.find((t) => !declared.table_id.includes(t))}`);
    }
    const store = this.stores.records(ownerId);
    const id = PermissionService.grantId(app, change.name);
    const now = Date.now();
    const existing = await store.get(ownerId, OwnerTable.permissions, id);
    const granted = change.action === 'Accept';
    await store.put(ownerId, OwnerTable.permissions, {
      _id: id, _date_created: existing?._date_created ?? now,
      _date_modified: existing ? Math.max(now, existing._date_modified + 1) : now,
      requestor_app: app, name: change.name, granted, scope: scopeOf(declared),
    });
    return { ...declared, granted };
  }

  /** Forgets every decision about an app (on removal). */
  async forgetApp(ownerId: string, appName: string): Promise<void> {
    const store = this.stores.records(ownerId);
    const grants = await store.query(ownerId, OwnerTable.permissions, { op: 'eq', path: ['requestor_app'], value: appName },
      { sort: [], skip: 0, limit: 10000 });
    if (grants.length) await store.batch(ownerId, grants.map((g) => ({ kind: 'delete' as const, table: OwnerTable.permissions, id: g._id })));
  }
}
