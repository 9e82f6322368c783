// Carries the datastore contract suite's arbitrary keys and values (`/contract/<hex>/ключ/🐱`, 1 MB
// strings, …) through the Kubernetes backend, which stores only Calico's kinds: each test key is
// the GlobalNetworkSet named `c` + the hex of the key's UTF-8 bytes (hex keeps prefixes prefixes
// and byte order, and is a valid object name), and each value is that set's `spec.nets[0]`.
// Translation only: every call goes to the real KubernetesBackend and its real API server, so
// revisions, compare-and-swap, lists, watches, conflicts and errors are the backend's own.
import type { Backend, KVPair, ListResult, WatchEvent, WatchOptions } from '../libcalico-go/lib/backend/api.js';
import { openKubernetes, type KubernetesBackend, type KubernetesBackendOptions } from '../libcalico-go/lib/backend/kubernetes/kubernetes.js';

const GNS = '/calico/resources/v3/projectcalico.org/globalnetworksets/';

export function encodeKey(k: string): string {
  return `${GNS}c${Buffer.from(k, 'utf8').toString('hex')}`;
}

export function decodeKey(k: string): string {
  return Buffer.from(k.slice(GNS.length + 1), 'hex').toString('utf8');
}

function encodeValue(key: string, v: string): string {
  const name = encodeKey(key).slice(GNS.length);
  return JSON.stringify({ kind: 'GlobalNetworkSet', apiVersion: 'projectcalico.org/v3', metadata: { name }, spec: { nets: [v] } });
}

function decodeValue(v: string): string {
  return (JSON.parse(v) as { spec: { nets: string[] } }).spec.nets[0];
}

const pair = (kv: KVPair): KVPair => ({ key: decodeKey(kv.key), value: decodeValue(kv.value), revision: kv.revision });

export class ContractAdapter implements Backend {
  readonly type = 'kubernetes' as const;
  constructor(readonly inner: KubernetesBackend) {}
  async get(key: string) {
    const kv = await this.inner.get(encodeKey(key));
    return kv && pair(kv);
  }
  async list(prefix: string): Promise<ListResult> {
    const l = await this.inner.list(encodeKey(prefix));
    return { items: l.items.map(pair), revision: l.revision };
  }
  async create(key: string, value: string) {
    return pair(await this.inner.create(encodeKey(key), encodeValue(key, value)).catch(rekey(key)));
  }
  async update(key: string, value: string, revision: string) {
    return pair(await this.inner.update(encodeKey(key), encodeValue(key, value), revision).catch(rekey(key)));
  }
  async apply(key: string, value: string) {
    return pair(await this.inner.apply(encodeKey(key), encodeValue(key, value)).catch(rekey(key)));
  }
  async delete(key: string, revision?: string) {
    return pair(await this.inner.delete(encodeKey(key), revision).catch(rekey(key)));
  }
  async *watch(prefix: string, opts?: WatchOptions): AsyncIterable<WatchEvent> {
    for await (const e of this.inner.watch(encodeKey(prefix), opts)) {
      const out: WatchEvent = { type: e.type, key: decodeKey(e.key), revision: e.revision };
      if (e.value !== undefined) out.value = decodeValue(e.value);
      if (e.prevValue !== undefined) out.prevValue = decodeValue(e.prevValue);
      yield out;
    }
  }
  revision() {
    return this.inner.revision();
  }
  close() {
    return this.inner.close();
  }
}

/** Errors name the test's key as well as the stored one. */
function rekey(key: string) {
  return (e: unknown): never => {
    if (e instanceof Error && 'key' in e) {
      (e as { key?: string }).key = key;
      e.message = `${key}: ${e.message}`;
    }
    throw e;
  };
}

export async function openAdapted(opts: KubernetesBackendOptions): Promise<ContractAdapter> {
  return new ContractAdapter(await openKubernetes(opts));
}
