// What Tortie does with each Felix setting — a node agent FELIX_* variable or a FelixConfiguration
// field — so that no setting is silently ignored. Each one is, for its source:
//
// * in force: Tortie does what it asks (or the value asks for what Tortie does anyway: a feature
//   switched off that Tortie does not have, Calico's default behaviour that Tortie shares);
// * refused: it asks for something Tortie lacks whose absence would break the operator's
//   expectation badly (encryption, another dataplane). The agent refuses to start on such a
//   variable; validation refuses such a FelixConfiguration at apply;
// * unsupported: accepted, and reported with exactly one warning naming it.
//
// The agent honours more from its environment than from FelixConfiguration: of the resource it
// reads only defaultEndpointToHostAction (node.<name>, then default; the environment wins).

export type FelixSource = 'env' | 'resource';

export type FelixSupport =
  | { kind: 'inForce' }
  | { kind: 'refused'; reason: string }
  | { kind: 'unsupported'; reason?: string };

/** Read from the agent's environment (node/pkg/config.ts and its users). */
const IN_FORCE_ENV = new Set([
  'healthEnabled',
  'healthHost',
  'healthPort',
  'prometheusMetricsEnabled',
  'prometheusMetricsHost',
  'prometheusMetricsPort',
  'logSeverityScreen',
  // The pod MTU (node/pkg/startup.ts).
  'mtuIfacePattern',
  'ipipMTU',
  'vxlanMTU',
  'vxlanEnabled',
  // The policy loop (node/cmd/tortie-node.ts → node/pkg/policy/loop.ts).
  'defaultEndpointToHostAction',
  'interfacePrefix',
  'iptablesRefreshInterval',
  'nftablesRefreshInterval',
  // Kernel settings and pod wiring (felix/dataplane/linux/kernel.ts).
  'ipv6Support',
]);

/** Read from FelixConfiguration (node/pkg/policy/loop.ts). */
const IN_FORCE_RESOURCE = new Set(['nodeSelector', 'defaultEndpointToHostAction']);

const isTrue = (v: unknown) => v === true;
const isFalse = (v: unknown) => v === false;
const ciIs =
  (...values: string[]) =>
  (v: unknown) =>
    typeof v === 'string' && values.some((x) => x.toLowerCase() === v.trim().toLowerCase());
const zeroDuration = (v: unknown) => v === 0 || (typeof v === 'string' && /^0+(\.0*)?(ns|us|µs|ms|s|m|h)?$/.test(v.trim()));

export const NO_WIREGUARD =
  'Tortie has no WireGuard encryption (and this kernel has no WireGuard), so pod traffic would cross the network unencrypted';
export const NO_BPF = 'Tortie has no eBPF dataplane (it programs nftables)';
const NO_EXTERNAL_DRIVER = 'Tortie has no external dataplane drivers: it always programs its own nftables dataplane';
const NO_HEP = 'host endpoints are not enforced by Tortie, so failsafe ports have no meaning';
const BPF_ONLY = 'only the eBPF dataplane uses it, and Tortie has none';
const WG_ONLY = 'only WireGuard uses it, and Tortie has none';

interface Rule {
  /** A value that asks for something Tortie must not pretend to give. */
  refuse?: (v: unknown) => boolean;
  /** A value that asks for what Tortie does anyway. */
  satisfied?: (v: unknown) => boolean;
  /** Why it is refused, or why it is not supported. */
  reason?: string;
}

const RULES: Record<string, Rule> = {
  wireguardEnabled: { refuse: isTrue, satisfied: isFalse, reason: NO_WIREGUARD },
  wireguardEnabledV6: { refuse: isTrue, satisfied: isFalse, reason: NO_WIREGUARD },
  wireguardHostEncryptionEnabled: { refuse: isTrue, satisfied: isFalse, reason: NO_WIREGUARD },
  bpfEnabled: { refuse: isTrue, satisfied: isFalse, reason: NO_BPF },
  useInternalDataplaneDriver: { refuse: isFalse, satisfied: isTrue, reason: NO_EXTERNAL_DRIVER },
  dataplaneDriver: { reason: NO_EXTERNAL_DRIVER },
  failsafeInboundHostPorts: { reason: NO_HEP },
  failsafeOutboundHostPorts: { reason: NO_HEP },
  xdpEnabled: { satisfied: isFalse, reason: 'XDP only accelerates doNotTrack host endpoint policy, which Tortie does not enforce' },
  genericXDPEnabled: { satisfied: isFalse, reason: 'XDP only accelerates doNotTrack host endpoint policy, which Tortie does not enforce' },
  ipipEnabled: { satisfied: isFalse, reason: 'this kernel has no IPIP; only the pod MTU allows for it' },
  usageReportingEnabled: { satisfied: isFalse, reason: 'Tortie never reports usage' },
  prometheusGoMetricsEnabled: { satisfied: isTrue, reason: 'Tortie always exports its process metrics' },
  prometheusProcessMetricsEnabled: { satisfied: isTrue, reason: 'Tortie always exports its process metrics' },
  prometheusWireGuardMetricsEnabled: { satisfied: isFalse, reason: WG_ONLY },
  ipForwarding: { satisfied: ciIs('Enabled'), reason: 'Tortie always enables IPv4 forwarding (pods need it)' },
  nftablesMode: { satisfied: ciIs('Enabled', 'Auto'), reason: 'Tortie always uses nftables' },
  iptablesBackend: { satisfied: ciIs('NFT', 'Auto'), reason: 'Tortie always uses nftables, in tables of its own' },
  chainInsertMode: { satisfied: ciIs('Insert'), reason: 'Tortie keeps its rules in nftables tables of its own' },
  routeSource: { satisfied: ciIs('CalicoIPAM'), reason: 'Tortie routes the IPAM blocks' },
  floatingIPs: { satisfied: ciIs('Disabled') },
  istioAmbientMode: { satisfied: ciIs('Disabled') },
  sidecarAccelerationEnabled: { satisfied: isFalse },
  workloadSourceSpoofing: { satisfied: ciIs('', 'Disabled') },
  localSubnetL2Reachability: { satisfied: ciIs('Disabled') },
  awsSrcDstCheck: { satisfied: ciIs('DoNothing') },
  windowsManageFirewallRules: { satisfied: ciIs('Disabled') },
  flowLogsLocalReporter: { satisfied: ciIs('Disabled') },
  requireMTUFile: { satisfied: isFalse },
  reportingInterval: { satisfied: zeroDuration, reason: 'Tortie writes no Felix status reports' },
  bpfLogLevel: { satisfied: ciIs('', 'Off'), reason: BPF_ONLY },
  // Felix-only environment parameters.
  TyphaK8sServiceName: { satisfied: ciIs('none'), reason: 'Tortie has no Typha' },
  DatastoreType: { reason: 'Tortie reads DATASTORE_TYPE' },
  FelixHostname: { reason: 'Tortie reads NODENAME' },
  NodeName: { reason: 'Tortie reads NODENAME' },
  EtcdAddr: { reason: 'Tortie reads ETCD_ENDPOINTS' },
  EtcdScheme: { reason: 'Tortie reads ETCD_ENDPOINTS' },
  EtcdEndpoints: { reason: 'Tortie reads ETCD_ENDPOINTS' },
  EtcdKeyFile: { reason: 'Tortie reads ETCD_KEY_FILE' },
  EtcdCertFile: { reason: 'Tortie reads ETCD_CERT_FILE' },
  EtcdCaFile: { reason: 'Tortie reads ETCD_CA_CERT_FILE' },
};

/** Defaults for families of fields without a rule of their own. */
function familyReason(key: string): string | undefined {
  if (key.startsWith('bpf')) return BPF_ONLY;
  if (key.startsWith('wireguard')) return WG_ONLY;
  if (key.startsWith('Typha')) return 'Tortie has no Typha';
  if (/^(iptables|nftables)/.test(key)) return 'Tortie keeps its rules in nftables tables of its own';
  if (/^log(FilePath|SeverityFile|SeveritySys)$/.test(key)) return 'Tortie logs to standard error only';
  return undefined;
}

/**
 * What Tortie does with Felix setting `key` (FelixConfiguration field name, or a Felix-only
 * parameter name such as `FelixHostname`) set to `value` (parsed: booleans as booleans).
 */
export function felixSupport(key: string, value: unknown, source: FelixSource): FelixSupport {
  const rule = RULES[key];
  if (rule?.refuse?.(value)) return { kind: 'refused', reason: rule.reason ?? 'it is not supported by Tortie' };
  if ((source === 'env' ? IN_FORCE_ENV : IN_FORCE_RESOURCE).has(key)) return { kind: 'inForce' };
  if (rule?.satisfied?.(value)) return { kind: 'inForce' };
  // From the resource: what the agent only reads from its environment.
  if (source === 'resource' && IN_FORCE_ENV.has(key)) {
    const variable = key === 'ipipMTU' ? 'FELIX_IPINIPMTU' : `FELIX_${key.toUpperCase()}`;
    return { kind: 'unsupported', reason: `tortie-node reads it only from its environment, as ${variable}` };
  }
  const reason = rule?.reason ?? familyReason(key);
  return reason ? { kind: 'unsupported', reason } : { kind: 'unsupported' };
}

/** `not supported by Tortie (<reason>); ignored` — the warning's tail. */
export function unsupportedText(s: { reason?: string }): string {
  return `not supported by Tortie${s.reason ? ` (${s.reason})` : ''}; ignored`;
}
