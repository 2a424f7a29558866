import type { Readable } from 'node:stream';
import type { Config } from '../../config.js';
import type { StoreRegistry } from '../../storage/registry.js';
import type { BlobInfo, BlobRange, StoredRecord } from '../../storage/types.js';
import { FreeholdError } from '../errors.js';
import { newRecordId } from '../ids.js';
import type { Access } from '../records/access.js';
import { authorizeTable } from '../records/access.js';
import { assertRecordSize, cleanClientRecord } from '../records/reserved.js';
import { joinUserFilePath, normaliseUserFilePath, userFileKey } from './paths.js';

export interface StagedUpload {
  key: string;
  info: BlobInfo;
  contentType: string | undefined;
}

export interface UploadOptions {
  fileName?: unknown;
  targetFolder?: unknown;
  doNotOverWrite?: unknown;
  /** Extra fields to keep on the file record. */
  data?: unknown;
}

/**
 * User files (FEPS upload): bytes in the owner's BlobStore, a record per file in
 * `<app>.files` whose `_id` is the file's path. The record is written after the
 * bytes are complete, so a failed upload leaves neither.
 */
export class FileService {
  constructor(private readonly stores: StoreRegistry, private readonly config: Config) {}

  filesTable(appName: string): string {
    return `${appName}.files`;
  }

  async upload(access: Access, body: Readable, clientFileName: string, contentType: string | undefined, options: UploadOptions): Promise<StoredRecord> {
    const { path, existing } = await this.target(access, clientFileName, options);
    const info = await this.stores.blobs(access.ownerId).put(userFileKey(access.ownerId, access.appName, path), body, {
      maxBytes: this.config.maxUploadBytes, ...(contentType ? { contentType } : {}),
    });
    return this.record(access, path, existing, info, contentType, options);
  }

  /**
   * For uploads whose options arrive after the file (freezr's own client sends them
   * last): the bytes are streamed to a staging key first, then moved once the
   * options say where they belong. Nothing is buffered in memory either way.
   */
  async stage(access: Access, body: Readable, contentType: string | undefined): Promise<StagedUpload> {
    const key = `${access.ownerId}/staging/${newRecordId()}`;
    const info = await this.stores.blobs(access.ownerId).put(key, body, {
      maxBytes: this.config.maxUploadBytes, ...(contentType ? { contentType } : {}),
    });
    return { key, info, contentType };
  }

  async commitStaged(access: Access, staged: StagedUpload, clientFileName: string, options: UploadOptions): Promise<StoredRecord> {
    const blobs = this.stores.blobs(access.ownerId);
    try {
      const { path, existing } = await this.target(access, clientFileName, options);
      const stream = await blobs.get(staged.key);
      if (!stream) throw new FreeholdError('internal', 'Staged upload vanished');
      const info = await blobs.put(userFileKey(access.ownerId, access.appName, path), stream, {
        ...(staged.contentType ? { contentType: staged.contentType } : {}),
      });
      return await this.record(access, path, existing, info, staged.contentType, options);
    } finally {
      await blobs.delete(staged.key);
    }
  }

  /**
   * Removes staged uploads left behind by a process that died mid-upload (their
   * request never finished, so nothing refers to them). Only old ones: a staging
   * blob younger than `olderThanMs` may belong to an upload still under way.
   */
  async cleanupStaging(ownerId: string, olderThanMs = 3600_000): Promise<number> {
    const blobs = this.stores.blobs(ownerId);
    const cutoff = Date.now() - olderThanMs;
    const stale: string[] = [];
    for await (const { key } of blobs.list(`${ownerId}/staging`)) {
      const info = await blobs.head(key);
      if (info && info.modified < cutoff) stale.push(key);
    }
    for (const key of stale) await blobs.delete(key);
    return stale.length;
  }

  async discardStaged(access: Access, staged: StagedUpload): Promise<void> {
    await this.stores.blobs(access.ownerId).delete(staged.key);
  }

  private async target(access: Access, clientFileName: string, options: UploadOptions): Promise<{ path: string; existing: StoredRecord | null }> {
    const path = joinUserFilePath(options.targetFolder, options.fileName ?? clientFileName);
    const existing = await this.stores.records(access.ownerId).get(access.ownerId, this.filesTable(access.appName), path);
    if (existing && (options.doNotOverWrite === true || options.doNotOverWrite === 'true')) {
      throw new FreeholdError('conflict', 'A file with this name exists');
    }
    return { path, existing };
  }

  private async record(access: Access, path: string, existing: StoredRecord | null, info: BlobInfo, contentType: string | undefined,
    options: UploadOptions): Promise<StoredRecord> {
    const extra = options.data === undefined ? {} : cleanClientRecord(options.data);
    const now = Date.now();
    const record: StoredRecord = {
      ...extra,
      _id: path,
      _date_created: existing?._date_created ?? now,
      _date_modified: existing ? Math.max(now, existing._date_modified + 1) : now,
      fileName: path.split('/').pop(),
      path,
      size: info.size,
      content_type: contentType ?? 'application/octet-stream',
      sha256: info.etag,
    };
    assertRecordSize(record);
    await this.stores.records(access.ownerId).put(access.ownerId, this.filesTable(access.appName), record);
    return record;
  }

  async open(access: Access, ownerId: string, rawPath: string, range?: BlobRange): Promise<{ info: BlobInfo; stream: Readable; path: string } | null> {
    authorizeTable(access, this.filesTable(access.appName), ownerId, 'read');
    const path = normaliseUserFilePath(rawPath);
    const key = userFileKey(ownerId, access.appName, path);
    const blobs = this.stores.blobs(ownerId);
    const info = await blobs.head(key);
    if (!info) return null;
    if (range && (range.start >= info.size || range.end < range.start)) {
      throw new FreeholdError('bad_request', 'Range not satisfiable');
    }
    const stream = await blobs.get(key, range ? { start: range.start, end: Math.min(range.end, info.size - 1) } : undefined);
    return stream ? { info, stream, path } : null;
  }

  async head(access: Access, ownerId: string, rawPath: string): Promise<BlobInfo | null> {
    authorizeTable(access, this.filesTable(access.appName), ownerId, 'read');
    return this.stores.blobs(ownerId).head(userFileKey(ownerId, access.appName, normaliseUserFilePath(rawPath)));
  }

  async remove(access: Access, rawPath: string): Promise<{ _id: string; success: true }> {
    const path = normaliseUserFilePath(rawPath);
    const table = this.filesTable(access.appName);
    const removed = await this.stores.records(access.ownerId).delete(access.ownerId, table, path);
    const blobGone = await this.stores.blobs(access.ownerId).delete(userFileKey(access.ownerId, access.appName, path));
    if (!removed && !blobGone) throw new FreeholdError('not_found', 'No such file');
    return { _id: path, success: true };
  }
}
