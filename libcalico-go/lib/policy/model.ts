// The inputs of the policy evaluator: endpoints, namespaces, policies, tiers, profiles and network
// sets, all plain data (v3 resources as stored), so the evaluator stays pure.
import type { Resource } from '../apis/v3/resource.js';

export type Labels = Record<string, string>;

export interface NamedPort {
  name: string;
  port: number;
  /** TCP, UDP or SCTP. */
  protocol: string;
}

export interface Endpoint {
  /** "NS/POD". */
  key: string;
  namespace: string;
  /** The endpoint's labels as policy sees them: pod labels plus projectcalico.org/namespace,
   *  projectcalico.org/orchestrator and pcns.<k> for each namespace label. */
  labels: Labels;
  /** Bare addresses (no prefix). */
  ips: string[];
  namedPorts: NamedPort[];
  serviceAccount?: string;
  /** Profile names in order, usually ["kns.<ns>"] (and "ksa.<ns>.<sa>"). */
  profiles: string[];
}

export interface Namespace {
  name: string;
  labels: Labels;
}

export interface PolicyModel {
  endpoints: Endpoint[];
  namespaces: Namespace[];
  /** NetworkPolicy and GlobalNetworkPolicy resources (projectcalico.org/v3). */
  policies: Resource[];
  /** Tier resources; `default` is implied when absent. */
  tiers: Resource[];
  /** Profile resources; a `kns.<ns>` profile that is absent allows everything (as Calico's does). */
  profiles: Resource[];
  /** NetworkSet and GlobalNetworkSet resources. */
  networkSets: Resource[];
}

export const NAMESPACE_LABEL = 'projectcalico.org/namespace';
export const ORCHESTRATOR_LABEL = 'projectcalico.org/orchestrator';
export const SERVICE_ACCOUNT_LABEL = 'projectcalico.org/serviceaccount';
export const NS_LABEL_PREFIX = 'pcns.';

export function emptyModel(): PolicyModel {
  return { endpoints: [], namespaces: [], policies: [], tiers: [], profiles: [], networkSets: [] };
}

export interface PodSpec {
  namespace: string;
  name: string;
  labels?: Labels;
  ips: string[];
  namedPorts?: NamedPort[];
  serviceAccount?: string;
  /** Labels of the pod's namespace, applied as pcns.<k>. */
  namespaceLabels?: Labels;
  orchestrator?: string;
}

/** An endpoint with the labels Calico gives a Kubernetes pod's workload endpoint. */
export function makeEndpoint(p: PodSpec): Endpoint {
  const labels: Labels = { ...(p.labels ?? {}) };
  for (const [k, v] of Object.entries(p.namespaceLabels ?? {})) labels[NS_LABEL_PREFIX + k] = v;
  labels[NAMESPACE_LABEL] = p.namespace;
  labels[ORCHESTRATOR_LABEL] = p.orchestrator ?? 'k8s';
  if (p.serviceAccount) labels[SERVICE_ACCOUNT_LABEL] = p.serviceAccount;
  const profiles = [`kns.${p.namespace}`];
  if (p.serviceAccount) profiles.push(`ksa.${p.namespace}.${p.serviceAccount}`);
  return {
    key: `${p.namespace}/${p.name}`,
    namespace: p.namespace,
    labels,
    ips: [...p.ips],
    namedPorts: [...(p.namedPorts ?? [])],
    serviceAccount: p.serviceAccount,
    profiles,
  };
}

/** Labels of a namespace as rules' namespaceSelector sees them (the namespace's own labels). */
export function namespaceLabels(model: PolicyModel, ns: string): Labels {
  const n = model.namespaces.find((x) => x.name === ns);
  if (n) return n.labels;
  // Fall back on the pcns.* labels an endpoint of that namespace carries.
  const ep = model.endpoints.find((e) => e.namespace === ns);
  const out: Labels = {};
  for (const [k, v] of Object.entries(ep?.labels ?? {})) if (k.startsWith(NS_LABEL_PREFIX)) out[k.slice(NS_LABEL_PREFIX.length)] = v;
  return out;
}
