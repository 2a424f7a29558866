import type { Services } from '../../core/services.js';
import type { Config } from '../../config.js';
import { LOCAL_PARENT, stripPort } from '../app-origin/hostnames.js';
import type { ExtraHosts } from './page.js';

/**
 * What an app page's CSP adds for the app's granted `external_fetch` (connect-src) and
 * `external_scripts` (script-src) permissions: only the https hosts the manifest
 * declared (manifest.ts validates their shape), only while the owner's grant stands
 * (read fresh on every page load, so a revocation applies at the next load).
 *
 * freehold's own origins are never handed out this way: not the main origin (owner
 * pages, account API) and not any app host, whatever the manifest says, so a
 * permission cannot turn into a path to another app or to the owner's session.
 */
export async function grantedExtraHosts(services: Services, ownerId: string, appName: string): Promise<ExtraHosts> {
  const perms = await services.permissions.list(ownerId, appName);
  const connect = new Set<string>();
  const script = new Set<string>();
  for (const p of perms) {
    if (!p.granted || !p.hosts) continue;
    const target = p.type === 'external_fetch' ? connect : p.type === 'external_scripts' ? script : null;
    if (!target) continue;
    for (const h of p.hosts) if (isOutsideHost(services.config, h)) target.add(h);
  }
  return { connect: [...connect], script: [...script] };
}

function isOutsideHost(config: Config, origin: string): boolean {
  const wildcard = origin.startsWith('https://*.');
  const hostname = stripPort(origin.slice(wildcard ? 'https://*.'.length : 'https://'.length));
  const covers = (name: string) => name === hostname || (wildcard && name.endsWith(`.${hostname}`));
  if (covers(new URL(config.publicUrl).hostname)) return false;
  // Every app host is `<something>.<parent>`: refuse the parent, anything under it, and wildcards above it.
  const parent = config.appsDomain === '' ? LOCAL_PARENT : stripPort(config.appsDomain);
  return !(covers(parent) || hostname.endsWith(`.${parent}`) || (wildcard && parent.endsWith(`.${hostname}`)));
}
