// The etcdv3 datastore, speaking etcd's v3 API through its gRPC-gateway (JSON over HTTP). The
// compare-and-swap transactions follow Calico's etcdv3 backend so both can share one cluster.
import {
  AlreadyExistsError,
  CompactedError,
  ConflictError,
  DatastoreError,
  NotFoundError,
  UnavailableError,
  type Backend,
  type KVPair,
  type ListResult,
  type WatchEvent,
  type WatchOptions,
} from '../api.js';
import {
  DEFAULT_ALLOW_KEY,
  PROFILES_PREFIX,
  defaultAllowPair,
  storedKey,
  storedPrefix,
  storedValue,
  tortiePair,
  tortieValue,
} from './calico-layout.js';
import { EtcdTransport, gatewayError, type EtcdTransportOptions } from './transport.js';
import { WatchStreamParser } from './watch-stream.js';

export type EtcdV3Options = EtcdTransportOptions;

// etcd 3.4 serves the gateway under /v3/ and the deprecated /v3beta/; 3.5 only /v3/.
const API = '/v3';

interface WireKV {
  key: string;
  value?: string;
  mod_revision?: string;
}

interface Header {
  revision?: string;
}

interface RangeResponse {
  header?: Header;
  kvs?: WireKV[];
}

interface TxnResponse {
  header?: Header;
  succeeded?: boolean;
  responses?: {
    response_range?: RangeResponse;
    response_delete_range?: { deleted?: string; prev_kvs?: WireKV[] };
  }[];
}

interface WatchResult {
  header?: Header;
  created?: boolean;
  canceled?: boolean;
  compact_revision?: string;
  cancel_reason?: string;
  events?: { type?: 'PUT' | 'DELETE'; kv: WireKV; prev_kv?: WireKV }[];
}

const RECONNECT_DELAY_MS = 200;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

const b64 = (s: string | Buffer) => Buffer.from(s as string).toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/** First key after every key starting with `prefix` (etcd's WithPrefix range end). */
export function prefixRangeEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      const end = Buffer.from(b.subarray(0, i + 1));
      end[i]! += 1;
      return end;
    }
  }
  return Buffer.from([0]); // "\0" as range end means "to the end of the keyspace"
}

/** Key and range end of a prefix query; the empty prefix is the whole keyspace. */
function prefixRange(prefix: string): { key: string; range_end: string } {
  return { key: prefix === '' ? b64(Buffer.from([0])) : b64(prefix), range_end: b64(prefixRangeEnd(prefix)) };
}

function checkRevision(rev: string, key: string): string {
  // A compare on mod_revision 0 would match an absent key; revisions from the store are >= 1.
  if (!/^[1-9]\d{0,18}$/.test(rev)) throw new DatastoreError(`invalid revision ${JSON.stringify(rev)}`, key);
  return rev;
}

const pair = (kv: WireKV): KVPair => ({ key: unb64(kv.key), value: unb64(kv.value), revision: kv.mod_revision ?? '0' });

export class EtcdV3Backend implements Backend {
  readonly type = 'etcdv3' as const;
  private readonly t: EtcdTransport;
  private readonly watches = new Set<AbortController>();
  private closed = false;

  constructor(opts: EtcdV3Options) {
    this.t = new EtcdTransport(opts);
  }

  get endpoints(): string[] {
    return this.t.endpointList;
  }

  private check(): void {
    if (this.closed) throw new DatastoreError('etcd backend is closed');
  }

  private async kv<T>(op: string, body: unknown, idempotent: boolean): Promise<T> {
    this.check();
    return this.t.call<T>(`${API}/kv/${op}`, body, idempotent);
  }

  async get(key: string): Promise<KVPair | null> {
    if (key === DEFAULT_ALLOW_KEY) return defaultAllowPair();
    const r = await this.kv<RangeResponse>('range', { key: b64(storedKey(key)) }, true);
    return r.kvs?.length ? tortiePair(pair(r.kvs[0]!)) : null;
  }

  async list(prefix: string): Promise<ListResult> {
    const r = await this.kv<RangeResponse>('range', { ...prefixRange(storedPrefix(prefix)), sort_order: 'ASCEND', sort_target: 'KEY' }, true);
    const items = (r.kvs ?? []).map((kv) => tortiePair(pair(kv)));
    // As Calico's etcdv3 List: the profiles always include the synthetic default-allow one.
    if (prefix.startsWith(PROFILES_PREFIX) && DEFAULT_ALLOW_KEY.startsWith(prefix)) items.push(defaultAllowPair());
    return { items, revision: r.header?.revision ?? '0' };
  }

  async create(key: string, value: string): Promise<KVPair> {
    const k = b64(storedKey(key));
    const r = await this.kv<TxnResponse>('txn', {
      compare: [{ key: k, target: 'VERSION', result: 'EQUAL', version: '0' }],
      success: [{ request_put: { key: k, value: b64(storedValue(key, value)) } }],
      failure: [{ request_range: { key: k } }],
    }, false);
    if (!r.succeeded) throw new AlreadyExistsError(`key ${key} already exists`, key);
    return { key, value, revision: r.header?.revision ?? '0' };
  }

  async update(key: string, value: string, revision: string): Promise<KVPair> {
    const k = b64(storedKey(key));
    const r = await this.kv<TxnResponse>('txn', {
      compare: [{ key: k, target: 'MOD', result: 'EQUAL', mod_revision: checkRevision(revision, key) }],
      success: [{ request_put: { key: k, value: b64(storedValue(key, value)) } }],
      failure: [{ request_range: { key: k } }],
    }, false);
    if (!r.succeeded) throw this.casFailure(key, revision, r);
    return { key, value, revision: r.header?.revision ?? '0' };
  }

  async apply(key: string, value: string): Promise<KVPair> {
    const r = await this.kv<{ header?: Header }>('put', { key: b64(storedKey(key)), value: b64(storedValue(key, value)) }, false);
    return { key, value, revision: r.header?.revision ?? '0' };
  }

  async delete(key: string, revision?: string): Promise<KVPair> {
    const k = b64(storedKey(key));
    if (revision === undefined) {
      const r = await this.kv<{ prev_kvs?: WireKV[] }>('deleterange', { key: k, prev_kv: true }, false);
      if (!r.prev_kvs?.length) throw new NotFoundError(`key ${key} does not exist`, key);
      return tortiePair(pair(r.prev_kvs[0]!));
    }
    const r = await this.kv<TxnResponse>('txn', {
      compare: [{ key: k, target: 'MOD', result: 'EQUAL', mod_revision: checkRevision(revision, key) }],
      success: [{ request_delete_range: { key: k, prev_kv: true } }],
      failure: [{ request_range: { key: k } }],
    }, false);
    if (!r.succeeded) throw this.casFailure(key, revision, r);
    const prev = r.responses?.[0]?.response_delete_range?.prev_kvs?.[0];
    if (!prev) throw new NotFoundError(`key ${key} does not exist`, key);
    return tortiePair(pair(prev));
  }

  /** A failed mod_revision compare: the Else branch read the key to tell "gone" from "changed". */
  private casFailure(key: string, revision: string, r: TxnResponse): DatastoreError {
    const cur = r.responses?.[0]?.response_range?.kvs?.[0];
    if (!cur) return new NotFoundError(`key ${key} does not exist`, key);
    return new ConflictError(`key ${key} is at revision ${cur.mod_revision}, not ${revision}`, key);
  }

  async revision(): Promise<string> {
    const r = await this.kv<RangeResponse>('range', { key: b64(Buffer.from([0])), count_only: true }, true);
    return r.header?.revision ?? '0';
  }

  /** etcd compaction: history before `revision` is dropped; watches from before it fail. */
  async compact(revision: string): Promise<void> {
    await this.kv('compaction', { revision: checkRevision(revision, ''), physical: true }, true);
  }

  watch(prefix: string, opts: WatchOptions = {}): AsyncIterable<WatchEvent> {
    this.check();
    const a = opts.afterRevision;
    if (a !== undefined && !/^\d{1,19}$/.test(a)) throw new DatastoreError(`invalid revision ${JSON.stringify(a)}`, prefix);
    const after = a === undefined ? undefined : BigInt(a);
    return this.watchFrom(prefix, after, opts.signal);
  }

  /**
   * One watch stream at a time; when it breaks (etcd restarted, endpoint died) it is reopened on
   * the next reachable endpoint from the revision after the last event delivered, so callers see
   * each event exactly once. If no endpoint can be reached, the iterator throws UnavailableError.
   */
  private async *watchFrom(prefix: string, after: bigint | undefined, signal?: AbortSignal): AsyncGenerator<WatchEvent> {
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) ac.abort();
    this.watches.add(ac);
    let last = after; // last revision delivered (or the start point)
    try {
      while (!ac.signal.aborted) {
        const body = {
          create_request: {
            ...prefixRange(storedPrefix(prefix)),
            prev_kv: true,
            ...(last === undefined ? {} : { start_revision: String(last + 1n) }),
          },
        };
        let stream: Awaited<ReturnType<EtcdTransport['stream']>>;
        try {
          stream = await this.t.stream(`${API}/watch`, body, ac.signal);
        } catch (e) {
          if (ac.signal.aborted) return;
          throw e;
        }
        const parser = new WatchStreamParser();
        let broken: unknown;
        try {
          for await (const chunk of stream.res) {
            for (const msg of parser.push(chunk as Buffer)) {
              const res = this.watchResult(msg, stream.endpoint, prefix, last);
              if (res.created && last === undefined && res.header?.revision) last = BigInt(res.header.revision);
              for (const ev of res.events ?? []) {
                const out = toEvent(ev);
                last = BigInt(out.revision);
                yield out;
                if (ac.signal.aborted) return;
              }
            }
          }
          broken = new Error('stream ended');
        } catch (e) {
          if (ac.signal.aborted) return;
          if (e instanceof DatastoreError) throw e;
          broken = e;
        } finally {
          stream.res.destroy();
        }
        // The stream broke: check that some endpoint answers before reopening, so a dead cluster
        // surfaces as UnavailableError instead of a reconnect loop.
        await sleep(RECONNECT_DELAY_MS, ac.signal);
        if (ac.signal.aborted) return;
        try {
          await this.revision();
        } catch (e) {
          if (ac.signal.aborted) return;
          if (e instanceof UnavailableError) {
            throw new UnavailableError(`watch of ${prefix} on ${stream.endpoint} broke (${(broken as Error).message}): ${e.message}`, prefix);
          }
          throw e;
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.watches.delete(ac);
      ac.abort();
    }
  }

  private watchResult(msg: unknown, endpoint: string, prefix: string, last: bigint | undefined): WatchResult {
    const m = msg as { result?: WatchResult; error?: unknown };
    if (m.error) throw gatewayError(m as Parameters<typeof gatewayError>[0], endpoint, `watch ${prefix}`);
    const res = m.result ?? {};
    if (res.canceled) {
      if (res.compact_revision && res.compact_revision !== '0') {
        throw new CompactedError(
          `watch of ${prefix} from revision ${last === undefined ? 'now' : last + 1n}: etcd ${endpoint} compacted history up to ${res.compact_revision}`,
          prefix,
        );
      }
      throw new DatastoreError(`etcd ${endpoint} cancelled watch of ${prefix}: ${res.cancel_reason ?? 'no reason given'}`, prefix);
    }
    return res;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watches) w.abort();
    this.t.close();
  }
}

function toEvent(ev: NonNullable<WatchResult['events']>[number]): WatchEvent {
  const stored = unb64(ev.kv.key);
  const out: WatchEvent = {
    type: ev.type === 'DELETE' ? 'delete' : 'put',
    key: tortiePair({ key: stored, value: '', revision: '0' }).key,
    revision: ev.kv.mod_revision ?? '0',
  };
  if (out.type === 'put') out.value = tortieValue(stored, unb64(ev.kv.value));
  if (ev.prev_kv) out.prevValue = tortieValue(stored, unb64(ev.prev_kv.value));
  return out;
}

export function openEtcdV3(opts: EtcdV3Options): EtcdV3Backend {
  return new EtcdV3Backend(opts);
}
