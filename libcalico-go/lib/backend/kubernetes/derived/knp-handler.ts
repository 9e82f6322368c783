// Kubernetes NetworkPolicies in the Kubernetes datastore: each networking.k8s.io/v1 NetworkPolicy
// reads as the v3 NetworkPolicy `knp.default.<name>` in its namespace (knp.ts), revision its own.
// Read-only: every write is "operation not supported" (change the Kubernetes object instead). The
// handler claims only `<namespace>/knp.default.*` keys among NetworkPolicies. A policy the
// conversion refuses is left out of lists, and a watch reports it as deleted.
import { DatastoreError, type KVPair, type ListResult, type WatchEvent, type WatchOptions } from '../../api.js';
import { parseResourceKey, resourceKey, resourcePrefix } from '../../keys.js';
import type { KubeClient } from '../client.js';
import type { KindHandler, KindHandlerFactory } from '../handler.js';
import { OperationNotSupportedError } from './errors.js';
import type { K8sObject } from './k8s-objects.js';
import { KNP_PREFIX, knpFromK8s, knpK8sName } from './knp.js';
import { encodeValue, namespaceOfPrefix, Source, watchSource } from './source.js';

const PREFIX = resourcePrefix('NetworkPolicy');
const npPath = (ns?: string) =>
  ns === undefined ? '/apis/networking.k8s.io/v1/networkpolicies' : `/apis/networking.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/networkpolicies`;

function keyOf(np: K8sObject): string | null {
  const m = np.metadata;
  return m?.name && m.namespace ? resourceKey('NetworkPolicy', KNP_PREFIX + m.name, m.namespace) : null;
}

export class KubernetesNetworkPolicyHandler implements KindHandler {
  readonly prefix = PREFIX;
  private readonly source: Source<K8sObject>;

  constructor(client: KubeClient) {
    this.source = new Source<K8sObject>(client, {
      resource: 'networkpolicies.networking.k8s.io',
      path: npPath,
      convert: (np) => {
        const key = keyOf(np);
        try {
          return { key, value: encodeValue(knpFromK8s(np)) };
        } catch {
          return { key, value: null };
        }
      },
    });
  }

  owns(key: string): boolean {
    const k = parseResourceKey(key);
    return !!k && k.plural === 'networkpolicies' && k.namespace !== undefined && k.name.startsWith(KNP_PREFIX);
  }

  async get(key: string): Promise<KVPair | null> {
    const k = parseResourceKey(key);
    const name = k && this.owns(key) ? knpK8sName(k.name) : null;
    if (!k || !name) return null;
    const np = await this.source.read(`${npPath(k.namespace)}/${encodeURIComponent(name)}`, key);
    if (!np) return null;
    try {
      return { key, value: encodeValue(knpFromK8s(np)), revision: np.metadata?.resourceVersion ?? '' };
    } catch (e) {
      throw new DatastoreError(`${key}: Kubernetes NetworkPolicy ${k.namespace}/${name} cannot be converted: ${(e as Error).message}`, key);
    }
  }

  async list(prefix: string, opts: { revision?: string } = {}): Promise<ListResult> {
    const { items, revision } = await this.source.list(prefix, namespaceOfPrefix(prefix, PREFIX), opts.revision);
    return { items, revision };
  }

  private refuse(op: string, key: string): never {
    throw new OperationNotSupportedError(op, key, 'Kubernetes NetworkPolicies are read from the Kubernetes API; change the networking.k8s.io object instead');
  }

  async create(key: string, ..._rest: string[]): Promise<KVPair> {
    this.refuse('Create', key);
  }
  async update(key: string, ..._rest: string[]): Promise<KVPair> {
    this.refuse('Update', key);
  }
  async apply(key: string, ..._rest: string[]): Promise<KVPair> {
    this.refuse('Apply', key);
  }
  async delete(key: string, ..._rest: string[]): Promise<KVPair> {
    this.refuse('Delete', key);
  }

  watch(prefix: string, opts: WatchOptions = {}): AsyncIterable<WatchEvent> {
    return watchSource(this.source, prefix, namespaceOfPrefix(prefix, PREFIX), opts);
  }
}

/** Registers Kubernetes NetworkPolicies (`knp.default.*`) with the Kubernetes backend. */
export const kubernetesNetworkPolicyHandler: KindHandlerFactory = (client) => new KubernetesNetworkPolicyHandler(client);
