// The Node kind of the Kubernetes datastore: Kubernetes Nodes read as Calico Nodes (node.ts). Create
// and Delete are not supported (Calico's answer: a Node exists because Kubernetes has it); Update and
// Apply read the k8s Node and PUT `nodes/<name>/status` with the Calico annotations merged in and the
// freshly read resourceVersion (the caller's revision is not a precondition, as in Calico). A
// conflict with a concurrent writer is retried on the new state, a bounded number of times.
import { ConflictError, NotFoundError, type KVPair, type ListResult, type WatchEvent, type WatchOptions } from '../../api.js';
import type { Resource } from '../../../apis/v3/resource.js';
import { parseResourceKey, resourceKey, resourcePrefix } from '../../keys.js';
import type { KubeClient } from '../client.js';
import type { KindHandler, KindHandlerFactory } from '../handler.js';
import { InvalidDerivedValueError, OperationNotSupportedError } from './errors.js';
import type { K8sNode } from './k8s-objects.js';
import { k8sNodeForUpdate, nodeFromK8s } from './node.js';
import { encodeValue, Source, watchSource } from './source.js';

const PREFIX = resourcePrefix('Node');
const UPDATE_ATTEMPTS = 5;

function pair(n: K8sNode): KVPair {
  const r = nodeFromK8s(n);
  return { key: resourceKey('Node', r.metadata.name), value: encodeValue(r), revision: n.metadata?.resourceVersion ?? '' };
}

export class NodeHandler implements KindHandler {
  readonly prefix = PREFIX;
  private readonly source: Source<K8sNode>;

  constructor(private readonly client: KubeClient) {
    this.source = new Source<K8sNode>(client, {
      resource: 'nodes',
      path: () => '/api/v1/nodes',
      convert: (n) => {
        const kv = pair(n);
        return { key: kv.key, value: kv.value };
      },
    });
  }

  private name(key: string): string {
    const p = parseResourceKey(key);
    if (p?.plural !== 'nodes' || p.namespace !== undefined) throw new NotFoundError(`${key}: not a Node key`, key);
    return p.name;
  }

  async get(key: string): Promise<KVPair | null> {
    const n = await this.source.read(`/api/v1/nodes/${encodeURIComponent(this.name(key))}`, key);
    return n ? pair(n) : null;
  }

  async list(prefix: string, opts: { revision?: string } = {}): Promise<ListResult> {
    const { items, revision } = await this.source.list(prefix, undefined, opts.revision);
    return { items, revision };
  }

  async create(key: string, _value?: string): Promise<KVPair> {
    throw new OperationNotSupportedError('Create', key, 'a Node exists because its Kubernetes Node does');
  }

  async delete(key: string, _revision?: string): Promise<KVPair> {
    throw new OperationNotSupportedError('Delete', key, 'a Node exists because its Kubernetes Node does');
  }

  async update(key: string, value: string, _revision?: string): Promise<KVPair> {
    const name = this.name(key);
    let node: Resource;
    try {
      node = JSON.parse(value) as Resource;
    } catch (e) {
      throw new InvalidDerivedValueError(`${key}: value is not JSON: ${(e as Error).message}`, key);
    }
    if (node?.metadata?.name !== name) throw new InvalidDerivedValueError(`${key}: value names Node ${JSON.stringify(node?.metadata?.name)}`, key);
    const path = `/api/v1/nodes/${encodeURIComponent(name)}`;
    for (let attempt = 1; ; attempt++) {
      const current = await this.source.read(path, key);
      if (!current) throw new NotFoundError(`${key}: Kubernetes Node ${name} not found`, key);
      try {
        const put = await this.client.request<K8sNode>('PUT', `${path}/status`, { key, resource: 'nodes/status', body: k8sNodeForUpdate(node, current) });
        return pair(put);
      } catch (e) {
        if (!(e instanceof ConflictError) || attempt >= UPDATE_ATTEMPTS) throw e;
      }
    }
  }

  apply(key: string, value: string): Promise<KVPair> {
    return this.update(key, value);
  }

  watch(prefix: string, opts: WatchOptions = {}): AsyncIterable<WatchEvent> {
    return watchSource(this.source, prefix, undefined, opts);
  }
}

/** Registers the Node kind with the Kubernetes backend. */
export const nodeHandler: KindHandlerFactory = (client) => new NodeHandler(client);
