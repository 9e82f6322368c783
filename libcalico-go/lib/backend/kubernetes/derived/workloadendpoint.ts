// Calico WorkloadEndpoint ↔ Kubernetes Pod (reference calico.md §1.1, §1.2, §4.5, §4.6;
// calico-k8s.md §1.1, §2.3, §8). Pure: no I/O.
//
// Read: a pod is an endpoint when it is scheduled and not hostNetwork (Calico's
// IsValidCalicoWorkloadEndpoint; a pod without addresses yet is still one, with no ipNetworks). Name
// `<node>-k8s-<pod>-eth0` with "-" doubled in each segment; interfaceName the one the CNI path wires
// (prefix + 11 hex of SHA-1("<ns>.<pod>")); addresses from status.podIPs, status.podIP, then the CNI's
// annotations `cni.projectcalico.org/podIPs` and `podIP`, none for a finished pod; revision = the pod's.
//
// Write: only the CNI writes, and only the pod-status annotations podIP, podIPs and containerID; a
// delete empties podIP and podIPs (containerID stays), as Calico's plugin does.
import { API_VERSION } from '../../../apis/v3/kinds.js';
import type { Resource } from '../../../apis/v3/resource.js';
import { workloadEndpointName } from '../../../apis/v3/validate/endpoints.js';
import { parseCIDR, parseIP, formatIP } from '../../../net/ip.js';
import { DEFAULT_VETH_PREFIX, hostVethName } from '../../../names/workload.js';
import type { K8sPod } from './k8s-objects.js';

export const ANN_POD_IP = 'cni.projectcalico.org/podIP';
export const ANN_POD_IPS = 'cni.projectcalico.org/podIPs';
export const ANN_CONTAINER_ID = 'cni.projectcalico.org/containerID';
export const LABEL_NAMESPACE = 'projectcalico.org/namespace';
export const LABEL_ORCHESTRATOR = 'projectcalico.org/orchestrator';
export const LABEL_SERVICE_ACCOUNT = 'projectcalico.org/serviceaccount';
export const POD_ENDPOINT = 'eth0';

/** Calico's IsValidCalicoWorkloadEndpoint: scheduled to a node and not on the host's network. */
export function isValidCalicoWorkloadEndpoint(pod: K8sPod): boolean {
  return !pod.spec?.hostNetwork && !!pod.spec?.nodeName;
}

/**
 * A pod that no longer owns its addresses: it has ended (Succeeded, Failed, Completed), or it is
 * being deleted and the CNI has emptied its podIP annotation (the CNI DEL happened).
 */
export function isFinished(pod: K8sPod): boolean {
  if (pod.metadata?.deletionTimestamp && pod.metadata.annotations?.[ANN_POD_IP] === '') return true;
  const phase = pod.status?.phase;
  return phase === 'Succeeded' || phase === 'Failed' || phase === 'Completed';
}

/** An address or CIDR as the single-address network Calico stores (`a.b.c.d/32`, `x::y/128`). */
function hostNet(text: string): string | undefined {
  const t = text.trim();
  const ip = parseIP(t.includes('/') ? t.slice(0, t.indexOf('/')) : t);
  if (!ip || (t.includes('/') && !parseCIDR(t))) return undefined;
  return `${formatIP(ip)}/${ip.version === 4 ? 32 : 128}`;
}

/** The pod's addresses in Calico's order of sources (status first, then the CNI's annotations). */
export function podIPNetworks(pod: K8sPod): string[] {
  if (isFinished(pod)) return [];
  const ann = pod.metadata?.annotations ?? {};
  let raw: string[] = [];
  if (pod.status?.podIPs && pod.status.podIPs.length > 0) raw = pod.status.podIPs.map((p) => p.ip);
  else if (pod.status?.podIP) raw = [pod.status.podIP];
  else if (ann[ANN_POD_IPS]) raw = ann[ANN_POD_IPS]!.split(',');
  else if (ann[ANN_POD_IP]) raw = [ann[ANN_POD_IP]!];
  const out: string[] = [];
  for (const r of raw) {
    const n = hostNet(r);
    if (n && !out.includes(n)) out.push(n);
  }
  return out;
}

/** The WorkloadEndpoint name of a pod on `node`: `<node>-k8s-<pod>-eth0`, "-" doubled per segment. */
export function podWorkloadEndpointName(node: string, pod: string): string {
  const r = workloadEndpointName({ node, orchestrator: 'k8s', pod, endpoint: POD_ENDPOINT });
  if (!('name' in r)) throw new RangeError(`cannot name the WorkloadEndpoint of pod ${JSON.stringify(pod)}: ${r.field} ${r.problem}`);
  return r.name;
}

/**
 * The identifiers in a WorkloadEndpoint name (segments split at single "-", "--" read back as "-");
 * null when it is not a k8s endpoint name `<node>-k8s-<pod>-<endpoint>`.
 */
export function parseWorkloadEndpointName(name: string): { node: string; pod: string; endpoint: string } | null {
  const segs: string[] = [];
  let cur = '';
  for (let i = 0; i < name.length; i++) {
    if (name[i] !== '-') {
      cur += name[i];
    } else if (name[i + 1] === '-') {
      cur += '-';
      i++;
    } else {
      segs.push(cur);
      cur = '';
    }
  }
  segs.push(cur);
  if (segs.length !== 4 || segs[1] !== 'k8s' || segs.some((s) => s === '' || s.startsWith('-') || s.endsWith('-'))) return null;
  return { node: segs[0]!, pod: segs[2]!, endpoint: segs[3]! };
}

export interface WepFromPodOptions {
  /** The host interface prefix (FELIX_INTERFACEPREFIX's first entry, as the CNI path uses); "cali". */
  interfacePrefix?: string;
}

/** The v3 WorkloadEndpoint of a pod; null when the pod is not one (hostNetwork or unscheduled). */
export function wepFromPod(pod: K8sPod, opts: WepFromPodOptions = {}): Resource | null {
  if (!isValidCalicoWorkloadEndpoint(pod)) return null;
  const meta = pod.metadata ?? {};
  const ns = meta.namespace ?? 'default';
  const podName = meta.name ?? '';
  const node = pod.spec!.nodeName!;
  const sa = pod.spec?.serviceAccountName ?? '';

  const labels: Record<string, string> = { ...(meta.labels ?? {}) };
  labels[LABEL_NAMESPACE] = ns;
  labels[LABEL_ORCHESTRATOR] = 'k8s';
  if (sa !== '' && sa.length < 63) labels[LABEL_SERVICE_ACCOUNT] = sa;

  const ports: Record<string, unknown>[] = [];
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (!p.containerPort || !(p.name || p.hostPort)) continue;
      const port: Record<string, unknown> = {};
      if (p.name) port.name = p.name;
      port.protocol = p.protocol || 'TCP';
      port.port = p.containerPort;
      if (p.hostPort) port.hostPort = p.hostPort;
      if (p.hostIP) port.hostIP = p.hostIP;
      ports.push(port);
    }
  }

  const spec: Record<string, unknown> = { orchestrator: 'k8s', node, pod: podName, endpoint: POD_ENDPOINT };
  const containerID = meta.annotations?.[ANN_CONTAINER_ID];
  if (containerID) spec.containerID = containerID;
  if (sa !== '') spec.serviceAccountName = sa;
  const nets = podIPNetworks(pod);
  if (nets.length > 0) spec.ipNetworks = nets;
  spec.profiles = sa !== '' ? [`kns.${ns}`, `ksa.${ns}.${sa}`] : [`kns.${ns}`];
  spec.interfaceName = hostVethName({ namespace: ns, pod: podName }, '', opts.interfacePrefix ?? DEFAULT_VETH_PREFIX);
  if (ports.length > 0) spec.ports = ports;

  const outMeta: Resource['metadata'] = { name: podWorkloadEndpointName(node, podName), namespace: ns };
  if (typeof meta.generateName === 'string' && meta.generateName) outMeta.generateName = meta.generateName;
  if (meta.uid) outMeta.uid = meta.uid;
  if (meta.creationTimestamp) outMeta.creationTimestamp = meta.creationTimestamp;
  if (meta.resourceVersion) outMeta.resourceVersion = meta.resourceVersion;
  outMeta.labels = labels;
  return { apiVersion: API_VERSION, kind: 'WorkloadEndpoint', metadata: outMeta, spec };
}

/** The body of a pod-status merge patch (strategic merge and JSON merge patch read it alike). */
export interface PodStatusPatch {
  metadata: { annotations: Record<string, string>; uid?: string; resourceVersion?: string };
}

export interface PatchPreconditions {
  /** The pod's uid: the patch fails if the pod was re-created meanwhile. */
  uid?: string;
  /** The revision the writer read: the patch fails with a conflict if the pod changed since. */
  resourceVersion?: string;
}

function withPreconditions(annotations: Record<string, string>, pre: PatchPreconditions): PodStatusPatch {
  const metadata: PodStatusPatch['metadata'] = { annotations };
  if (pre.uid) metadata.uid = pre.uid;
  if (pre.resourceVersion) metadata.resourceVersion = pre.resourceVersion;
  return { metadata };
}

/**
 * The pod-status patch the CNI makes for a WorkloadEndpoint it created or updated: podIP = first of
 * spec.ipNetworks, podIPs = all of them joined by ",", containerID = spec.containerID.
 */
export function wepWritePatch(wep: Resource, pre: PatchPreconditions = {}): PodStatusPatch {
  const spec = (wep.spec ?? {}) as Record<string, unknown>;
  const nets = Array.isArray(spec.ipNetworks) ? spec.ipNetworks.filter((n): n is string => typeof n === 'string') : [];
  const containerID = typeof spec.containerID === 'string' ? spec.containerID : '';
  return withPreconditions({ [ANN_POD_IP]: nets[0] ?? '', [ANN_POD_IPS]: nets.join(','), [ANN_CONTAINER_ID]: containerID }, pre);
}

/** The pod-status patch for deleting a pod's WorkloadEndpoint: podIP and podIPs emptied. */
export function wepDeletePatch(pre: PatchPreconditions = {}): PodStatusPatch {
  return withPreconditions({ [ANN_POD_IP]: '', [ANN_POD_IPS]: '' }, pre);
}
