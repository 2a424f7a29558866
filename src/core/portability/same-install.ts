import type { Services } from '../services.js';
import { OwnerTable } from '../system-tables.js';
import type { AppPlan } from './archive-verify.js';

/** The app's live install when it already holds exactly the archive's files (its install id), else null. */
export async function installedAlready(services: Services, owner: string, plan: AppPlan): Promise<string | null> {
  const current = await services.stores.records(owner).get(owner, OwnerTable.apps, plan.app);
  const installId = typeof current?.install_id === 'string' ? current.install_id : null;
  return installId && (await sameInstall(services, owner, plan, installId)) ? installId : null;
}

/** Whether the app's live install already holds exactly these files (same paths, sizes and hashes). */
export async function sameInstall(services: Services, owner: string, plan: AppPlan, installId: string): Promise<boolean> {
  const blobs = services.stores.blobs(owner);
  const prefix = `${owner}/apps/${plan.app}/${installId}/`;
  const wanted = new Map(plan.files.map((f) => [(f.kind as { path: string }).path, f]));
  let count = 0;
  for await (const { key } of blobs.list(prefix)) {
    const f = wanted.get(key.slice(prefix.length));
    if (!f) return false;
    const info = await blobs.head(key);
    if (!info || info.size !== f.size || info.etag !== f.digest.sha256) return false;
    count++;
  }
  return count === wanted.size;
}
