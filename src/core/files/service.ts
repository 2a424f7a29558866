import type { Readable } from 'node:stream';
import type { Config } from '../../config.js';
import type { StoreRegistry } from '../../storage/registry.js';
import type { BlobInfo, BlobRange, StoredRecord } from '../../storage/types.js';
import { FreeholdError } from '../errors.js';
import { newRecordId } from '../ids.js';
import { plainMediaType } from '../mime.js';
import type { Access } from '../records/access.js';
import { authorizeTable } from '../records/access.js';
import { assertRecordSize, cleanClientRecord } from '../records/reserved.js';
import { fileRecordServerFields, withoutServerFileFields } from './freezr-fields.js';
import { fileBlobKey, joinUserFilePath, newBlobKey, normaliseUserFilePath } from './paths.js';

export interface StagedUpload {
  key: string;
  blobId: string;
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
    const target = await this.target(access, clientFileName, options);
    const staged = await this.stage(access, body, contentType);
    return this.commitStaged(access, staged, clientFileName, options, target);
  }

  /**
   * Streams the bytes under a fresh key. They belong to no file until a record points
   * at them (commitStaged), so options may still arrive after the file (freezr's own
   * client sends them last) without a second copy.
   */
  async stage(access: Access, body: Readable, sentType: string | undefined): Promise<StagedUpload> {
    // Kept only as one plain type: it is sent back with the file (send-blob.ts).
    const contentType = plainMediaType(sentType);
    const blobId = newRecordId();
    const key = newBlobKey(access.ownerId, access.appName, blobId);
    const info = await this.stores.blobs(access.ownerId).put(key, body, {
      maxBytes: this.config.maxUploadBytes, ...(contentType ? { contentType } : {}),
    });
    return { key, blobId, info, contentType };
  }

  /** Commits staged bytes as the file the options name: one record write; the old bytes go after. */
  async commitStaged(access: Access, staged: StagedUpload, clientFileName: string, options: UploadOptions,
    known?: { path: string; existing: StoredRecord | null }): Promise<StoredRecord> {
    try {
      const { path, existing } = known ?? (await this.target(access, clientFileName, options));
      const record = await this.record(access, path, existing, staged, options);
      if (existing) {
        const oldKey = fileBlobKey(access.ownerId, access.appName, existing);
        if (oldKey !== staged.key) await this.stores.blobs(access.ownerId).delete(oldKey).catch(() => undefined);
      }
      return record;
    } catch (err) {
      await this.discardStaged(access, staged).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Removes bytes no file record points at: left by a process that died between
   * writing the bytes and the record, or by a failed delete. Only old ones: bytes
   * younger than `olderThanMs` may belong to an upload still under way.
   */
  async sweepUnreferenced(ownerId: string, olderThanMs = 3600_000): Promise<number> {
    const blobs = this.stores.blobs(ownerId);
    const records = this.stores.records(ownerId);
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for (const prefix of [`${ownerId}/filedata`, `${ownerId}/staging`]) {
      const candidates: string[] = [];
      for await (const { key } of blobs.list(prefix)) candidates.push(key);
      for (const key of candidates) {
        const info = await blobs.head(key);
        if (!info || info.modified >= cutoff) continue;
        const [, kind, app, blobId] = key.split('/');
        if (kind === 'filedata' && app && blobId) {
          // `blob_id` in records from before `_blob_id` (freezr-fields.ts).
          const refs = await records.count(ownerId, `${app}.files`, {
            op: 'or', items: [{ op: 'eq', path: ['_blob_id'], value: blobId }, { op: 'eq', path: ['blob_id'], value: blobId }],
          });
          if (refs > 0) continue;
        }
        if (await blobs.delete(key)) removed++;
      }
    }
    return removed;
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

  private async record(access: Access, path: string, existing: StoredRecord | null, staged: StagedUpload,
    options: UploadOptions): Promise<StoredRecord> {
    const extra = options.data === undefined ? {} : cleanClientRecord(withoutServerFileFields(options.data));
    const now = Date.now();
    const record: StoredRecord = {
      ...extra,
      _id: path,
      _date_created: existing?._date_created ?? now,
      _date_modified: existing ? Math.max(now, existing._date_modified + 1) : now,
      ...fileRecordServerFields(path, staged.info.size, staged.contentType ?? 'application/octet-stream', staged.blobId),
    };
    assertRecordSize(record);
    await this.stores.records(access.ownerId).put(access.ownerId, this.filesTable(access.appName), record);
    return record;
  }

  /** Where a file's bytes are, from its record; null when there is no such file. */
  private async locate(access: Access, ownerId: string, rawPath: string): Promise<{ key: string; path: string } | null> {
    authorizeTable(access, this.filesTable(access.appName), ownerId, 'read');
    const path = normaliseUserFilePath(rawPath);
    const record = await this.stores.records(ownerId).get(ownerId, this.filesTable(access.appName), path);
    return record ? { key: fileBlobKey(ownerId, access.appName, record), path } : null;
  }

  async open(access: Access, ownerId: string, rawPath: string, range?: BlobRange): Promise<{ info: BlobInfo; stream: Readable; path: string } | null> {
    const at = await this.locate(access, ownerId, rawPath);
    if (!at) return null;
    const blobs = this.stores.blobs(ownerId);
    const info = await blobs.head(at.key);
    if (!info) return null;
    if (range && (range.start >= info.size || range.end < range.start)) {
      throw new FreeholdError('bad_request', 'Range not satisfiable');
    }
    const stream = await blobs.get(at.key, range ? { start: range.start, end: Math.min(range.end, info.size - 1) } : undefined);
    return stream ? { info, stream, path: at.path } : null;
  }

  async head(access: Access, ownerId: string, rawPath: string): Promise<BlobInfo | null> {
    const at = await this.locate(access, ownerId, rawPath);
    return at ? this.stores.blobs(ownerId).head(at.key) : null;
  }

  /** Deletes the record first (the file is gone at once), then its bytes. */
  async remove(access: Access, rawPath: string): Promise<{ _id: string; success: true }> {
    const path = normaliseUserFilePath(rawPath);
    const removed = await this.stores.records(access.ownerId).delete(access.ownerId, this.filesTable(access.appName), path);
    if (!removed) throw new FreeholdError('not_found', 'No such file');
    // Unreferenced bytes left by a failure here are swept later.
    await this.stores.blobs(access.ownerId).delete(fileBlobKey(access.ownerId, access.appName, removed)).catch(() => undefined);
    return { _id: path, success: true };
  }
}
