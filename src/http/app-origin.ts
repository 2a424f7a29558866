import type { Config } from '../config.js';

/**
 * The one place that decides which origin serves an app. Today every app is served
 * under `/apps/<app>/` on the main origin; the isolation work moves each app to an
 * origin of its own by changing only this module (and the hosts it accepts).
 */
export interface AppLocation {
  /** Absolute URL of the app's root, ending in `/`. */
  baseUrl: string;
  /** URL path prefix of the app's files, ending in `/`. */
  pathPrefix: string;
  /** The origin the app's pages run on. */
  origin: string;
}

export function appLocation(config: Config, _ownerId: string, appName: string): AppLocation {
  const origin = new URL(config.publicUrl).origin;
  const pathPrefix = `/apps/${appName}/`;
  return { baseUrl: origin + pathPrefix, pathPrefix, origin };
}

/** The origin of the server's API as seen by app pages (CEPS/FEPS calls go here). */
export function apiOrigin(config: Config): string {
  return new URL(config.publicUrl).origin;
}
