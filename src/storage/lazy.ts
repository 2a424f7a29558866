import type { BlobStore, RecordStore } from './types.js';
import { DelegatingBlobStore, DelegatingRecordStore } from './delegating.js';

/**
 * A store whose backend module is loaded by `init()`, not at start-up: the drivers
 * of the network stores (pg, the AWS SDK) cost tens of MB of memory, and most
 * servers never use one of them. The URL is parsed before, so a bad URL still
 * fails at once.
 */
export class LazyRecordStore extends DelegatingRecordStore {
  private loaded: RecordStore | undefined;
  constructor(private readonly name: string, private readonly load: () => Promise<RecordStore>) { super(); }

  override get kind(): string { return this.name; }

  protected get inner(): RecordStore {
    if (!this.loaded) throw new Error(`The ${this.name} store was used before init()`);
    return this.loaded;
  }

  override async init(): Promise<void> {
    this.loaded ??= await this.load();
    await this.loaded.init();
  }

  /** Unlike a view, this owns the store it loaded. */
  override close(): Promise<void> { return this.loaded ? this.loaded.close() : Promise.resolve(); }
}

/** The blob-store counterpart of LazyRecordStore. */
export class LazyBlobStore extends DelegatingBlobStore {
  private loaded: BlobStore | undefined;
  constructor(private readonly name: string, private readonly load: () => Promise<BlobStore>) { super(); }

  override get kind(): string { return this.name; }

  protected get inner(): BlobStore {
    if (!this.loaded) throw new Error(`The ${this.name} store was used before init()`);
    return this.loaded;
  }

  override async init(): Promise<void> {
    this.loaded ??= await this.load();
    await this.loaded.init();
  }

  override close(): Promise<void> { return this.loaded ? this.loaded.close() : Promise.resolve(); }
}
