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
// The pod identity and the host veth name are the library's (libcalico-go/lib/names/workload.ts, as
// Calico keeps VethNameForWorkload in libcalico-go: the Kubernetes datastore's Pod→WorkloadEndpoint
// conversion needs it too); they are re-exported from here for the plugin and the agent.

import { CniError, ErrCode } from '../skel/errors.js';
import {
  type WorkloadEndpointIds,
  workloadEndpointName,
} from '../../../libcalico-go/lib/apis/v3/validate/endpoints.js';
import { type PodIdentity, orchestratorOf } from '../../../libcalico-go/lib/names/workload.js';

export { type WorkloadEndpointIds, workloadEndpointName };
export {
  DEFAULT_VETH_PREFIX,
  MAX_IFNAME_LEN,
  type Orchestrator,
  type PodIdentity,
  VETH_SUFFIX_LEN,
  hostVethName,
  orchestratorOf,
  podIdentityFromArgs,
  vethPrefixFrom,
} from '../../../libcalico-go/lib/names/workload.js';

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
