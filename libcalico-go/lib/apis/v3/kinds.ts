// The projectcalico.org/v3 kinds Tortie serves, with the names Calico stores them under.

export const API_VERSION = 'projectcalico.org/v3';

export interface KindInfo {
  kind: string;
  /** Plural used in datastore keys and as a `get` argument. */
  plural: string;
  namespaced: boolean;
  /** Extra names calicoctl accepts on the command line (lower-case). */
  aliases: string[];
}

const table: KindInfo[] = [
  { kind: 'IPPool', plural: 'ippools', namespaced: false, aliases: ['ippool', 'ipp', 'ipps', 'pool', 'pools'] },
  { kind: 'IPReservation', plural: 'ipreservations', namespaced: false, aliases: ['ipreservation', 'ipr', 'iprs'] },
  {
    kind: 'IPAMConfiguration',
    plural: 'ipamconfigurations',
    namespaced: false,
    aliases: ['ipamconfiguration', 'ipamconfig', 'ipamconfigs', 'ipamc'],
  },
  { kind: 'Node', plural: 'nodes', namespaced: false, aliases: ['node', 'no'] },
  {
    kind: 'WorkloadEndpoint',
    plural: 'workloadendpoints',
    namespaced: true,
    aliases: ['workloadendpoint', 'wep', 'weps'],
  },
  { kind: 'HostEndpoint', plural: 'hostendpoints', namespaced: false, aliases: ['hostendpoint', 'hep', 'heps'] },
  { kind: 'Profile', plural: 'profiles', namespaced: false, aliases: ['profile', 'pro', 'pros'] },
  {
    kind: 'NetworkPolicy',
    plural: 'networkpolicies',
    namespaced: true,
    aliases: ['networkpolicy', 'policy', 'policies', 'pol', 'pols', 'netpol', 'netpols'],
  },
  {
    kind: 'GlobalNetworkPolicy',
    plural: 'globalnetworkpolicies',
    namespaced: false,
    aliases: ['globalnetworkpolicy', 'gnp', 'gnps'],
  },
  { kind: 'NetworkSet', plural: 'networksets', namespaced: true, aliases: ['networkset', 'netset', 'netsets'] },
  {
    kind: 'GlobalNetworkSet',
    plural: 'globalnetworksets',
    namespaced: false,
    aliases: ['globalnetworkset', 'gns'],
  },
  { kind: 'Tier', plural: 'tiers', namespaced: false, aliases: ['tier'] },
  {
    kind: 'BGPConfiguration',
    plural: 'bgpconfigurations',
    namespaced: false,
    aliases: ['bgpconfiguration', 'bgpconfig', 'bgpconfigs'],
  },
  { kind: 'BGPPeer', plural: 'bgppeers', namespaced: false, aliases: ['bgppeer', 'bgpp', 'bgpps', 'peer', 'peers'] },
  {
    kind: 'FelixConfiguration',
    plural: 'felixconfigurations',
    namespaced: false,
    aliases: ['felixconfiguration', 'felixconfig', 'felixconfigs'],
  },
  {
    kind: 'ClusterInformation',
    plural: 'clusterinformations',
    namespaced: false,
    aliases: ['clusterinformation', 'clusterinfo'],
  },
  {
    // Written by each node's agent (status); spec.node names the node it reports on.
    kind: 'CalicoNodeStatus',
    plural: 'caliconodestatuses',
    namespaced: false,
    aliases: ['caliconodestatus', 'caliconodestatuses', 'cns'],
  },
  {
    kind: 'KubeControllersConfiguration',
    plural: 'kubecontrollersconfigurations',
    namespaced: false,
    aliases: ['kubecontrollersconfiguration', 'kubecontrollersconfig'],
  },
];

const byKind = new Map(table.map((k) => [k.kind, k]));
const byName = new Map<string, KindInfo>();
for (const k of table) {
  for (const n of [k.kind.toLowerCase(), k.plural, ...k.aliases]) byName.set(n, k);
}

export const KINDS: readonly KindInfo[] = table;

/** Looks up a kind by its exact Kind name (as in YAML). */
export function kindInfo(kind: string): KindInfo | undefined {
  return byKind.get(kind);
}

/** Looks up a kind as typed on a command line: kind, plural or alias, any case. */
export function kindFromArg(arg: string): KindInfo | undefined {
  return byName.get(arg.toLowerCase());
}
