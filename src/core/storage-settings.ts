import type { StoreRegistry } from '../storage/registry.js';
import { FreeholdError } from './errors.js';
import { checkNoOverlap, checkOwnerChosenStore, type StoreInUse } from './storage-policy.js';

/** Schemes an owner may choose for themselves: network stores only, never paths on the host's disks. */
const OWNER_SCHEMES = /^(postgres|postgresql|s3):\/\//i;

export interface StorageChoice {
  records?: string;
  blobs?: string;
}

export interface StorageChoiceContext {
  /** The owner chose for themselves (FREEHOLD_OWNER_STORAGE), not the admin for them. */
  chosenByOwner: boolean;
  /** An owner's own stores may be on loopback or private addresses (FREEHOLD_OWNER_STORAGE_PRIVATE). */
  allowPrivateAddresses: boolean;
  /** The backup store's URL, if any: no owner's store may overlap it. */
  backupBlobs: string;
}

/**
 * Points an owner with no data yet at their own stores ("bring your own storage").
 * Owners with data move with `freehold migrate`, which copies and verifies; a plain
 * switch would strand their data. The stores are opened (and their schema made)
 * before anything is recorded, so a wrong URL fails here and changes nothing. An
 * owner's own choice must also pass storage-policy.ts; nobody's may overlap a store
 * in use.
 */
export async function chooseOwnerStorage(stores: StoreRegistry, owner: string, choice: StorageChoice, ctx: StorageChoiceContext): Promise<void> {
  const current = stores.storageOf(owner);
  const records = choice.records ?? current.records;
  const blobs = choice.blobs ?? current.blobs;
  const chosen = [choice.records, choice.blobs].filter((u): u is string => u !== undefined);
  if (ctx.chosenByOwner) {
    for (const url of chosen) {
      if (!OWNER_SCHEMES.test(url)) {
        throw new FreeholdError('forbidden', 'Owners may choose postgres:// or s3:// stores; local paths are for the admin');
      }
      await checkOwnerChosenStore(url, ctx.allowPrivateAddresses);
    }
  }
  for (const url of chosen) await checkNoOverlap(url, storesInUse(stores, owner, ctx.backupBlobs));
  if (current.state === 'migrating') throw new FreeholdError('conflict', 'A move is under way for this owner');
  const hasData = (await stores.records(owner).listTables(owner)).some((t) => t.count > 0);
  let hasFiles = false;
  for await (const _ of stores.blobs(owner).list(owner)) {
    hasFiles = true;
    break;
  }
  if (hasData || hasFiles) {
    throw new FreeholdError('conflict', 'This owner already has data: move it with `freehold migrate`, which copies and verifies it');
  }
  // Which stores are the owner's own choice from now on: the host's rules for those apply each time they are opened.
  const before = current.ownerChosen ?? [];
  const ownerChosen = ctx.chosenByOwner ? [...before, ...chosen] : before.filter((url) => !chosen.includes(url));
  try {
    await stores.openOwnerStores({ records, blobs, ownerChosen });
  } catch (err) {
    if (err instanceof FreeholdError && err.code === 'forbidden') throw err; // the host's rules, checked again as the stores open
    throw new FreeholdError('bad_request', `Cannot open that storage: ${(err as Error).message.replace(/\/\/[^@/]*@/g, '//***@')}`);
  }
  await stores.setOwnerStorage(owner, { records, blobs, state: 'active', ownerChosen });
}

/** Every store an owner's new one must not overlap: the host's, other owners', the backup store. */
export function storesInUse(stores: StoreRegistry, owner: string, backupBlobs: string): StoreInUse[] {
  return [...stores.storesInUse(owner), ...(backupBlobs ? [{ url: backupBlobs, what: 'the backup store', sameRootShared: false }] : [])];
}

/** A store URL as shown to people: credentials masked. */
export function maskStoreUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):([^@/]+)@/, '//$1:***@').replace(/(secretAccessKey|password)=[^&]*/gi, '$1=***');
}
