// The datastore contract: an ordered key-value store with a global revision, compare-and-swap
// updates and resumable watches. Both backends (embedded, etcdv3) implement exactly this; Calico's
// key layout (keys.ts) and the resource and IPAM clients sit on top of it.

export interface KVPair {
  key: string;
  value: string;
  /** Revision of the last write to this key (decimal string, etcd's ModRevision). */
  revision: string;
}

export interface ListResult {
  items: KVPair[];
  /** Store revision at which the list was taken; watch with afterRevision = this to resume. */
  revision: string;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  /** New value for put; absent for delete. */
  value?: string;
  /** Value before the event, when the backend knows it. */
  prevValue?: string;
  /** Revision of this event. */
  revision: string;
}

export interface WatchOptions {
  /** Deliver only events with revision greater than this. Default: the current revision. */
  afterRevision?: string;
  /** Abort to end the watch; the iterator then finishes without error. */
  signal?: AbortSignal;
}

export interface Backend {
  readonly type: 'embedded' | 'etcdv3' | 'kubernetes';
  get(key: string): Promise<KVPair | null>;
  /** All keys starting with `prefix`, sorted by key. */
  list(prefix: string): Promise<ListResult>;
  /** Create if absent, else AlreadyExistsError. */
  create(key: string, value: string): Promise<KVPair>;
  /** Compare-and-swap on revision: NotFoundError if absent, ConflictError if revision differs. */
  update(key: string, value: string, revision: string): Promise<KVPair>;
  /** Unconditional put. */
  apply(key: string, value: string): Promise<KVPair>;
  /** Delete; with revision, only if it matches (ConflictError otherwise). NotFoundError if absent. */
  delete(key: string, revision?: string): Promise<KVPair>;
  /**
   * Events under `prefix` in revision order. If `afterRevision` is older than the backend keeps,
   * the iterator throws CompactedError and the caller re-lists.
   */
  watch(prefix: string, opts?: WatchOptions): AsyncIterable<WatchEvent>;
  /** Current store revision. */
  revision(): Promise<string>;
  close(): Promise<void>;
}

export class DatastoreError extends Error {
  constructor(
    message: string,
    readonly key?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class AlreadyExistsError extends DatastoreError {}
export class NotFoundError extends DatastoreError {}
export class ConflictError extends DatastoreError {}
export class CompactedError extends DatastoreError {}
/** The datastore could not be reached or answered with a failure; the operation may be retried. */
export class UnavailableError extends DatastoreError {}
