// Names derived from a pod's identity: the host-side interface name and the WorkloadEndpoint name.
// Pure functions, shared by tortie-node (which wires pods and writes WorkloadEndpoints) and anything
// that needs to predict those names (tests, tortiectl), so there is exactly one implementation.
//
// Rules (Calico's, reference §1.1, §1.2, §1.8):
// - A workload is a Kubernetes pod ("k8s" orchestrator) iff both K8S_POD_NAMESPACE and K8S_POD_NAME
//   are non-empty; otherwise the orchestrator is "cni" and the container ID identifies it.
// - Host veth, k8s: prefix + the first 11 lowercase hex digits of SHA-1("<namespace>.<pod>"). This is
//   also what the KDD Pod→WorkloadEndpoint conversion puts in spec.interfaceName, so the name depends
//   only on the pod, never on the container: a re-created sandbox gets the same host interface.
// - Host veth, otherwise: prefix + the first 11 characters of the container ID (fewer if it is
//   shorter). Calico hard-codes "cali" here; we use the same `prefix` argument for both cases (the
//   default is "cali", so the default behaviour is identical).
// - WorkloadEndpoint name: `<node>-<orchestrator>-<pod|containerID>-<endpoint>` with every "-" inside
//   a segment doubled; the function lives with the v3 API model and is re-exported from here.

import { createHash } from 'node:crypto';
import { CniError, ErrCode } from '../skel/errors.js';
import {
  type WorkloadEndpointIds,
  workloadEndpointName,
} from '../../../libcalico-go/lib/apis/v3/validate/endpoints.js';

export { type WorkloadEndpointIds, workloadEndpointName };

/** Calico's default host-side interface prefix (Felix's InterfacePrefix). */
export const DEFAULT_VETH_PREFIX = 'cali';
/** Number of hash / container-ID characters after the prefix. */
export const VETH_SUFFIX_LEN = 11;
/** Linux IFNAMSIZ - 1. */
export const MAX_IFNAME_LEN = 15;

/** The pod part of CNI_ARGS (K8S_POD_NAMESPACE, K8S_POD_NAME). */
export interface PodIdentity {
  namespace?: string | undefined;
  pod?: string | undefined;
}

export type Orchestrator = 'k8s' | 'cni';

/** "k8s" when both namespace and pod are non-empty, else "cni" (as Calico decides). */
export function orchestratorOf(id: PodIdentity): Orchestrator {
  return id.namespace && id.pod ? 'k8s' : 'cni';
}

/** Reads K8S_POD_NAMESPACE / K8S_POD_NAME from CNI_ARGS given as a Map or a plain object. */
export function podIdentityFromArgs(args: ReadonlyMap<string, string> | Readonly<Record<string, string>>): PodIdentity {
  const get = (k: string): string | undefined =>
    args instanceof Map ? args.get(k) : (args as Readonly<Record<string, string>>)[k];
  const out: PodIdentity = {};
  const namespace = get('K8S_POD_NAMESPACE');
  const pod = get('K8S_POD_NAME');
  if (namespace) out.namespace = namespace;
  if (pod) out.pod = pod;
  return out;
}

/**
 * The interface prefix from a FELIX_INTERFACEPREFIX-style value: its first comma-separated entry,
 * trimmed; "cali" when the value is absent or that entry is empty.
 */
export function vethPrefixFrom(value: string | undefined): string {
  const first = (value ?? '').split(',')[0]!.trim();
  return first === '' ? DEFAULT_VETH_PREFIX : first;
}

/**
 * The host-side interface name of a workload. Throws a RangeError when the container ID is empty
 * (non-k8s case) or when the prefix makes the name longer than 15 characters (the kernel would refuse
 * it later, far from the cause).
 */
const RANDOM_HEX_ID = /^[0-9a-f]{11,}$/;

export function hostVethName(args: PodIdentity, containerId: string, prefix: string = DEFAULT_VETH_PREFIX): string {
  let suffix: string;
  if (orchestratorOf(args) === 'k8s') {
    suffix = createHash('sha1').update(`${args.namespace}.${args.pod}`).digest('hex').slice(0, VETH_SUFFIX_LEN);
  } else {
    if (containerId === '') throw new RangeError('cannot name the host interface: no pod identity and an empty container ID');
    // Calico takes the ID's first 11 characters, which is safe for random hex IDs (Docker, CRI,
    // podman) but not for ctr's "<namespace>-<name>": two containers of one namespace would share
    // a host interface, and the second ADD would delete the first one's. Other IDs are hashed.
    suffix = RANDOM_HEX_ID.test(containerId)
      ? containerId.slice(0, VETH_SUFFIX_LEN)
      : createHash('sha1').update(containerId).digest('hex').slice(0, VETH_SUFFIX_LEN);
  }
  const name = prefix + suffix;
  if (name.length > MAX_IFNAME_LEN) {
    throw new RangeError(
      `host interface name ${JSON.stringify(name)} is ${name.length} characters (at most ${MAX_IFNAME_LEN}): ` +
        `interface prefix ${JSON.stringify(prefix)} is longer than ${MAX_IFNAME_LEN - VETH_SUFFIX_LEN} characters`,
    );
  }
  return name;
}

/** Everything that identifies one workload endpoint. */
export interface WorkloadSpec {
  /** The Calico node name. */
  node: string;
  /** K8S_POD_NAMESPACE / K8S_POD_NAME. */
  pod: PodIdentity;
  /** CNI_CONTAINERID. */
  containerId: string;
  /** CNI_IFNAME (Calico's "endpoint"). */
  ifname: string;
}

/** The identifiers Calico's WorkloadEndpoint name is built from, with the orchestrator decided. */
export function workloadEndpointIds(w: WorkloadSpec): WorkloadEndpointIds {
  const orchestrator = orchestratorOf(w.pod);
  const ids: WorkloadEndpointIds = { node: w.node, orchestrator, endpoint: w.ifname };
  if (orchestrator === 'k8s') ids.pod = w.pod.pod!;
  else ids.containerID = w.containerId;
  return ids;
}

/**
 * The WorkloadEndpoint name for a CNI invocation, or a CniError naming the input that cannot be used:
 * code 7 for the node name (it comes from the network configuration or the nodename file), code 4 for
 * K8S_POD_NAME, CNI_CONTAINERID or CNI_IFNAME (environment variables). E.g. node `kind-worker`, pod
 * `nginx-abc`, ifname `eth0` → `kind--worker-k8s-nginx--abc-eth0`.
 */
export function workloadEndpointNameFor(w: WorkloadSpec): string {
  const r = workloadEndpointName(workloadEndpointIds(w));
  if ('name' in r) return r.name;
  const source: Record<string, string> = {
    node: 'node name',
    pod: 'CNI_ARGS K8S_POD_NAME',
    containerID: 'CNI_CONTAINERID',
    endpoint: 'CNI_IFNAME',
    orchestrator: 'orchestrator',
  };
  const code = r.field === 'node' || r.field === 'orchestrator' ? ErrCode.InvalidNetworkConfig : ErrCode.InvalidEnvironment;
  throw new CniError(
    code,
    `cannot name the WorkloadEndpoint: ${source[r.field] ?? r.field} ${JSON.stringify(r.value ?? '')} ${r.problem}`,
  );
}

/**
 * The prefix shared by every WorkloadEndpoint name of one workload regardless of its endpoint
 * (`<node>-k8s-<pod>-` / `<node>-cni-<containerID>-`), as Calico uses to find an existing endpoint.
 * A candidate matches only if the rest of its name is a single segment (contains no single "-").
 */
export function workloadEndpointNamePrefix(w: Omit<WorkloadSpec, 'ifname'>): string {
  const full = workloadEndpointNameFor({ ...w, ifname: 'x' });
  return full.slice(0, -1);
}

/** Whether `name` is the WorkloadEndpoint of the workload for some endpoint (see the prefix above). */
export function workloadEndpointNameMatches(name: string, w: Omit<WorkloadSpec, 'ifname'>): boolean {
  const prefix = workloadEndpointNamePrefix(w);
  if (!name.startsWith(prefix)) return false;
  const rest = name.slice(prefix.length);
  // The endpoint segment has its "-" doubled, so a lone "-" means the name belongs to another
  // workload whose pod name starts with ours (pod "web" vs pod "web-1": "...-k8s-web--1-eth0").
  return rest !== '' && !rest.replaceAll('--', '').includes('-');
}
