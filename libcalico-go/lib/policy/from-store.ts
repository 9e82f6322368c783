// The policy model as the datastore holds it: workload endpoints (with their namespace's labels
// from the kns.<ns> profiles), policies, tiers, profiles and network sets. Shared by
// `tortiectl policy explain` and, later, the agent's enforcement.
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

function endpointOf(wep: Resource, nsLabels: Map<string, Record<string, string>>): Endpoint {
  const spec = (wep.spec ?? {}) as Obj;
  const namespace = wep.metadata.namespace ?? 'default';
  const pod = typeof spec.pod === 'string' && spec.pod !== '' ? spec.pod : wep.metadata.name;
  const ips = (Array.isArray(spec.ipNetworks) ? (spec.ipNetworks as string[]) : []).map((n) => n.split('/')[0]!);
  const ports = Array.isArray(spec.ports) ? (spec.ports as Array<{ name?: string; port?: number; protocol?: string }>) : [];
  const ep = makeEndpoint({
    namespace,
    name: pod,
    labels: wep.metadata.labels ?? {},
    ips,
    namedPorts: ports.filter((p) => p.name && p.port).map((p) => ({ name: p.name!, port: p.port!, protocol: String(p.protocol ?? 'TCP') })),
    serviceAccount: typeof spec.serviceAccountName === 'string' ? spec.serviceAccountName : undefined,
    namespaceLabels: nsLabels.get(namespace) ?? {},
    orchestrator: typeof spec.orchestrator === 'string' ? spec.orchestrator : 'k8s',
  });
  // Labels the WEP already carries win over the derived ones.
  Object.assign(ep.labels, wep.metadata.labels ?? {});
  if (Array.isArray(spec.profiles) && spec.profiles.length > 0) ep.profiles = (spec.profiles as string[]).slice();
  return ep;
}

/** The evaluator's model from a datastore's resources. */
export async function modelFromStore(store: Backend): Promise<PolicyModel> {
  const c = new ResourceClient(store);
  const m = emptyModel();
  const profiles = await c.list('Profile');
  const nsLabels = namespaceLabelsFromProfiles(profiles);
  for (const [name, labels] of nsLabels) m.namespaces.push({ name, labels });
  m.endpoints = (await c.list('WorkloadEndpoint')).map((w) => endpointOf(w, nsLabels));
  m.policies = [...(await c.list('GlobalNetworkPolicy')), ...(await c.list('NetworkPolicy'))];
  m.tiers = await c.list('Tier');
  // A profile with no rules (e.g. kns.<ns> written only for its labels) stands for Calico's
  // allow-all namespace profile.
  m.profiles = profiles.filter((p) => {
    const s = (p.spec ?? {}) as Obj;
    return (Array.isArray(s.ingress) && s.ingress.length > 0) || (Array.isArray(s.egress) && s.egress.length > 0);
  });
  m.networkSets = [...(await c.list('GlobalNetworkSet')), ...(await c.list('NetworkSet'))];
  return m;
}
