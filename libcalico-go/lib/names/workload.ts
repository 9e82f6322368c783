// A workload's identity and its host-side interface name: pure functions shared by the CNI plugin
// and agent (cni-plugin/pkg/naming re-exports them) and the Kubernetes datastore's Pod →
// WorkloadEndpoint conversion (spec.interfaceName), as Calico keeps VethNameForWorkload in
// libcalico-go. Rules (Calico's):
// - A workload is a Kubernetes pod ("k8s" orchestrator) iff both K8S_POD_NAMESPACE and K8S_POD_NAME
//   are non-empty; otherwise the orchestrator is "cni" and the container ID identifies it.
// - Host veth, k8s: prefix + the first 11 lowercase hex digits of SHA-1("<namespace>.<pod>"), so the
//   name depends only on the pod, never on the container: a re-created sandbox gets the same host
//   interface.
// - Host veth, otherwise: prefix + the first 11 characters of the container ID (see hostVethName).

import { createHash } from 'node:crypto';

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
