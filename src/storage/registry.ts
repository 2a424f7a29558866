import type { BlobStore, RecordStore } from './types.js';

/**
 * Which stores hold which owner's data. Today every owner uses the host's stores;
 * per-owner stores ("bring your own storage") resolve here without callers changing.
 */
export class StoreRegistry {
  constructor(readonly host: RecordStore, readonly hostBlobs: BlobStore) {}

  records(_owner: string): RecordStore {
    return this.host;
  }

  blobs(_owner: string): BlobStore {
    return this.hostBlobs;
  }

  async close(): Promise<void> {
    await this.host.close();
    await this.hostBlobs.close();
  }
}
