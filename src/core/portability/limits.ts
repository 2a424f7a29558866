/**
 * How much an import accepts. Its own module so that the HTTP route can cap the
 * upload before it loads the import code (zip reading, record validation) at all.
 */
export interface ImportLimits {
  /** The zip file itself. */
  maxArchiveBytes: number;
  /** Sum of the entries' uncompressed sizes (a zip bomb's real size, checked while inflating too). */
  maxTotalBytes: number;
  maxEntries: number;
  /** One record, serialised (CEPS caps client records at 2 MB; internal ones have headroom). */
  maxLineBytes: number;
  maxManifestBytes: number;
}

export const DEFAULT_IMPORT_LIMITS: ImportLimits = {
  maxArchiveBytes: 20 * 1024 ** 3,
  maxTotalBytes: 40 * 1024 ** 3,
  maxEntries: 500_000,
  maxLineBytes: 8 * 1024 * 1024,
  maxManifestBytes: 128 * 1024 * 1024,
};
