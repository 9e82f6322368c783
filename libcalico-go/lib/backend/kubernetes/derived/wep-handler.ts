// The WorkloadEndpoint kind of the Kubernetes datastore: Pods read as WorkloadEndpoints
// (workloadendpoint.ts). Writes follow Calico v3.29: only the CNI plugin writes (a handler made with
// `cniWrites`), and a write is the strategic-merge patch of the pod's status subresource setting the
// annotations podIP, podIPs and containerID (with the pod's uid, and for Update the caller's
// revision, as preconditions); Delete empties podIP and podIPs. Anyone else gets Calico's
// "operation not supported".
import { NotFoundError, type KVPair, type ListResult, type WatchEvent, type WatchOptions } from '../../api.js';
import type { Resource } from '../../../apis/v3/resource.js';
import { parseResourceKey, resourceKey, resourcePrefix } from '../../keys.js';
import type { KubeClient } from '../client.js';
import type { KindHandler, KindHandlerFactory } from '../handler.js';
import { InvalidDerivedValueError, OperationNotSupportedError } from './errors.js';
import type { K8sPod } from './k8s-objects.js';
import { encodeValue, namespaceOfPrefix, Source, watchSource } from './source.js';
import { parseWorkloadEndpointName, wepDeletePatch, wepFromPod, wepWritePatch, type PodStatusPatch } from './workloadendpoint.js';

const PREFIX = resourcePrefix('WorkloadEndpoint');
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';

export interface WorkloadEndpointHandlerOptions {
  /** Host interface prefix (FELIX_INTERFACEPREFIX's first entry), as the CNI path names veths. */
  interfacePrefix?: string;
  /** This client is the CNI plugin's (Calico's PatchModeCNI): writes patch the pod. Default false. */
  cniWrites?: boolean;
  /** Pods per list page (default 500). */
  pageSize?: number;
}

const podsPath = (ns?: string) => (ns === undefined ? '/api/v1/pods' : `/api/v1/namespaces/${encodeURIComponent(ns)}/pods`);

export class WorkloadEndpointHandler implements KindHandler {
  readonly prefix = PREFIX;
  private readonly source: Source<K8sPod>;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: WorkloadEndpointHandlerOptions = {},
  ) {
    this.source = new Source<K8sPod>(client, {
      resource: 'pods',
      path: podsPath,
      pageSize: opts.pageSize,
      convert: (p) => {
        const w = wepFromPod(p, { interfacePrefix: opts.interfacePrefix });
        if (!w) return { key: null, value: null };
        return { key: resourceKey('WorkloadEndpoint', w.metadata.name, w.metadata.namespace), value: encodeValue(w) };
      },
    });
  }

  private pair(p: K8sPod): KVPair | null {
    const w = wepFromPod(p, { interfacePrefix: this.opts.interfacePrefix });
    if (!w) return null;
    return { key: resourceKey('WorkloadEndpoint', w.metadata.name, w.metadata.namespace), value: encodeValue(w), revision: p.metadata?.resourceVersion ?? '' };
  }

  /** The pod behind a key: namespace, pod name and the pod's path; null for a name no pod gives. */
  private target(key: string): { ns: string; pod: string; path: string } | null {
    const k = parseResourceKey(key);
    if (k?.plural !== 'workloadendpoints' || k.namespace === undefined) return null;
    const ids = parseWorkloadEndpointName(k.name);
    if (ids?.endpoint !== 'eth0') return null;
    return { ns: k.namespace, pod: ids.pod, path: `${podsPath(k.namespace)}/${encodeURIComponent(ids.pod)}` };
  }

  /** The pod whose endpoint `key` is (same node and name), or null. */
  private async podOf(key: string): Promise<{ pod: K8sPod; kv: KVPair; path: string } | null> {
    const t = this.target(key);
    if (!t) return null;
    const pod = await this.source.read(t.path, key);
    const kv = pod ? this.pair(pod) : null;
    return pod && kv && kv.key === key ? { pod, kv, path: t.path } : null;
  }

  async get(key: string): Promise<KVPair | null> {
    return (await this.podOf(key))?.kv ?? null;
  }

  async list(prefix: string, opts: { revision?: string } = {}): Promise<ListResult> {
    const { items, revision } = await this.source.list(prefix, namespaceOfPrefix(prefix, PREFIX), opts.revision);
    return { items, revision };
  }

  private refuse(op: string, key: string): never {
    throw new OperationNotSupportedError(op, key, 'in the Kubernetes datastore only the CNI plugin writes WorkloadEndpoints (pod annotations)');
  }

  private async patch(op: string, key: string, make: (pod: K8sPod) => PodStatusPatch): Promise<KVPair> {
    if (!this.opts.cniWrites) this.refuse(op, key);
    const found = await this.podOf(key);
    if (!found) throw new NotFoundError(`${key}: no scheduled pod has this WorkloadEndpoint`, key);
    const patched = await this.client.request<K8sPod>('PATCH', `${found.path}/status`, {
      key,
      resource: 'pods/status',
      body: make(found.pod),
      contentType: STRATEGIC_MERGE_PATCH,
    });
    return this.pair(patched)!;
  }

  private parse(key: string, value: string): Resource {
    let w: Resource;
    try {
      w = JSON.parse(value) as Resource;
    } catch (e) {
      throw new InvalidDerivedValueError(`${key}: value is not JSON: ${(e as Error).message}`, key);
    }
    const k = parseResourceKey(key);
    if (w?.metadata?.name !== k?.name || (w.metadata.namespace ?? 'default') !== k?.namespace) {
      throw new InvalidDerivedValueError(`${key}: value names WorkloadEndpoint ${JSON.stringify(`${w?.metadata?.namespace}/${w?.metadata?.name}`)}`, key);
    }
    return w;
  }

  async create(key: string, value: string): Promise<KVPair> {
    if (!this.opts.cniWrites) this.refuse('Create', key);
    const w = this.parse(key, value);
    return this.patch('Create', key, (pod) => wepWritePatch(w, { uid: pod.metadata?.uid }));
  }

  async update(key: string, value: string, revision: string): Promise<KVPair> {
    if (!this.opts.cniWrites) this.refuse('Update', key);
    const w = this.parse(key, value);
    return this.patch('Update', key, (pod) => wepWritePatch(w, { uid: pod.metadata?.uid, resourceVersion: revision }));
  }

  async apply(key: string, value: string): Promise<KVPair> {
    if (!this.opts.cniWrites) this.refuse('Apply', key);
    const w = this.parse(key, value);
    return this.patch('Apply', key, (pod) => wepWritePatch(w, { uid: pod.metadata?.uid }));
  }

  async delete(key: string, revision?: string): Promise<KVPair> {
    return this.patch('Delete', key, (pod) => wepDeletePatch({ uid: pod.metadata?.uid, resourceVersion: revision }));
  }

  watch(prefix: string, opts: WatchOptions = {}): AsyncIterable<WatchEvent> {
    return watchSource(this.source, prefix, namespaceOfPrefix(prefix, PREFIX), opts);
  }
}

/** Registers the WorkloadEndpoint kind with the Kubernetes backend. */
export function workloadEndpointHandler(opts: WorkloadEndpointHandlerOptions = {}): KindHandlerFactory {
  return (client) => new WorkloadEndpointHandler(client, opts);
}
