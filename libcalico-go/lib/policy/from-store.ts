// The policy model as the datastore holds it: workload endpoints (with their namespace's labels
// from the kns.<ns> profiles), policies, tiers, profiles and network sets. Shared by
// `tortiectl policy explain` and the agent's enforcement (node/pkg/policy/).
import type { Backend } from '../backend/api.js';
import type { Resource } from '../apis/v3/resource.js';
import { ResourceClient } from '../clientv3/resources.js';
import { type Endpoint, type PolicyModel, NS_LABEL_PREFIX, emptyModel, makeEndpoint } from './model.js';

type Obj = Record<string, unknown>;

/** Namespace labels from the kns.<ns> profile's labelsToApply (pcns.<k> keys). */
function namespaceLabelsFromProfiles(profiles: Resource[]): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const p of profiles) {
    if (!p.metadata.name.startsWith('kns.')) continue;
    const lta = ((p.spec ?? {}) as Obj).labelsToApply as Record<string, string> | undefined;
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(lta ?? {})) labels[k.startsWith(NS_LABEL_PREFIX) ? k.slice(NS_LABEL_PREFIX.length) : k] = v;
    out.set(p.metadata.name.slice(4), labels);
  }
  return out;
}

function endpointOf(wep: Resource, nsLabels: Map<string, Record<string, string>>, profiles: Map<string, Resource>): Endpoint {
  const spec = (wep.spec ?? {}) as Obj;
  const namespace = wep.metadata.namespace ?? 'default';
  const pod = typeof spec.pod === 'string' && spec.pod !== '' ? spec.pod : wep.metadata.name;
  const ips = (Array.isArray(spec.ipNetworks) ? (spec.ipNetworks as string[]) : []).map((n) => n.split('/')[0]!);
  const ports = Array.isArray(spec.ports) ? (spec.ports as Array<{ name?: string; port?: number; protocol?: string }>) : [];
  const stored = Array.isArray(spec.profiles) && spec.profiles.length > 0 ? (spec.profiles as string[]).slice() : undefined;
  const ep = makeEndpoint({
    namespace,
    name: pod,
    labels: wep.metadata.labels ?? {},
    ips,
    namedPorts: ports.filter((p) => p.name && p.port).map((p) => ({ name: p.name!, port: p.port!, protocol: String(p.protocol ?? 'TCP') })),
    serviceAccount: typeof spec.serviceAccountName === 'string' ? spec.serviceAccountName : undefined,
    // The namespace's labels reach endpoints that have its kns.<ns> profile.
    namespaceLabels: !stored || stored.includes(`kns.${namespace}`) ? (nsLabels.get(namespace) ?? {}) : {},
    orchestrator: typeof spec.orchestrator === 'string' ? spec.orchestrator : 'k8s',
  });
  if (stored) {
    ep.profiles = stored;
    // Other profiles' labelsToApply (e.g. a network's profile `<network>: ""`).
    for (const name of stored) {
      if (name.startsWith('kns.')) continue;
      const lta = ((profiles.get(name)?.spec ?? {}) as Obj).labelsToApply as Record<string, string> | undefined;
      Object.assign(ep.labels, lta ?? {});
    }
  }
  // Labels the WEP already carries win over the derived ones.
  Object.assign(ep.labels, wep.metadata.labels ?? {});
  return ep;
}

/**
 * Whether a stored policy can apply to workloads. Calico renders doNotTrack and preDNAT policies
 * for host endpoints only (Felix's untracked and pre-DNAT tiers), never for a workload, whatever
 * its selector says. Tortie refuses both flags at apply (it enforces no host endpoint policy), so
 * such policies can only come from a datastore Calico wrote; they are left out of the model, as
 * Calico leaves them out of every workload's policy. (applyOnForward only adds forwarded traffic
 * through host endpoints: for workloads such a policy applies as any other.)
 */
export function appliesToWorkloads(p: Resource): boolean {
  const spec = (p.spec ?? {}) as Obj;
  return !(p.kind === 'GlobalNetworkPolicy' && (spec.doNotTrack === true || spec.preDNAT === true));
}

/** What policy enforcement reads: the evaluator's model and the WorkloadEndpoints it came from. */
export interface PolicyInputs {
  model: PolicyModel;
  workloadEndpoints: Resource[];
}

/** Reads the policy model (and the workload endpoints, for the caller to pick its local ones). */
export async function readPolicyInputs(store: Backend): Promise<PolicyInputs> {
  const c = new ResourceClient(store);
  const m = emptyModel();
  const [profiles, weps, gnps, nps, tiers, gnss, nss] = await Promise.all([
    c.list('Profile'),
    c.list('WorkloadEndpoint'),
    c.list('GlobalNetworkPolicy'),
    c.list('NetworkPolicy'),
    c.list('Tier'),
    c.list('GlobalNetworkSet'),
    c.list('NetworkSet'),
  ]);
  const nsLabels = namespaceLabelsFromProfiles(profiles);
  for (const [name, labels] of nsLabels) m.namespaces.push({ name, labels });
  const byName = new Map(profiles.map((p) => [p.metadata.name, p]));
  m.endpoints = weps.map((w) => endpointOf(w, nsLabels, byName));
  m.policies = [...gnps.filter(appliesToWorkloads), ...nps];
  m.tiers = tiers;
  // As stored: a profile without rules allows nothing (Calico's semantics); an absent kns.<ns>
  // profile allows all (the evaluator's stand-in for Calico's namespace controller).
  m.profiles = profiles;
  m.networkSets = [...gnss, ...nss];
  return { model: m, workloadEndpoints: weps };
}

/** The evaluator's model from a datastore's resources. */
export async function modelFromStore(store: Backend): Promise<PolicyModel> {
  return (await readPolicyInputs(store)).model;
}
