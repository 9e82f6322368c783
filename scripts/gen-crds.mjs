#!/usr/bin/env node
// Writes manifests/crds.yaml: the 19 crd.projectcalico.org/v1 CustomResourceDefinitions of Calico
// v3.29's set, with structural schemas of the fields Tortie's v3 types define
// (libcalico-go/lib/apis/v3/validate/*) and of the IPAM objects. No x-kubernetes-preserve-unknown-fields:
// the API server prunes what the schema does not name, so every field Tortie writes is here
// (libcalico-go/lib/backend/kubernetes/crds.test.ts round-trips a full object of each kind).
// Ports are int-or-string. FelixConfiguration's fields come from FELIX_FIELDS.
//
// Usage: npm run build && node scripts/gen-crds.mjs   (writes manifests/crds.yaml and the CRDs of manifests/tortie.yaml)
//        node scripts/gen-crds.mjs --check           (exit 1 when the file is out of date)
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { stringify } from 'yaml';

const root = new URL('..', import.meta.url).pathname;
const { FELIX_FIELDS } = await import(`${root}dist/libcalico-go/lib/apis/v3/validate/felix-fields.js`);

// ---- schema vocabulary ------------------------------------------------------------------------
const S = { type: 'string' };
const B = { type: 'boolean' };
const I = { type: 'integer' };
const N = { type: 'number' };
const arr = (items) => ({ type: 'array', items });
const obj = (properties, extra = {}) => ({ type: 'object', properties, ...extra });
const map = (v = S) => ({ type: 'object', additionalProperties: v });
const intOrString = { anyOf: [{ type: 'integer' }, { type: 'string' }], 'x-kubernetes-int-or-string': true };
const SL = arr(S);

const icmp = obj({ type: I, code: I });
const entity = obj({
  nets: SL,
  notNets: SL,
  selector: S,
  notSelector: S,
  namespaceSelector: S,
  ports: arr(intOrString),
  notPorts: arr(intOrString),
  serviceAccounts: obj({ names: SL, selector: S }),
  services: obj({ name: S, namespace: S }),
});
const rule = obj({
  action: S,
  ipVersion: I,
  protocol: intOrString,
  notProtocol: intOrString,
  icmp,
  notICMP: icmp,
  source: entity,
  destination: entity,
  http: obj({ methods: SL, paths: arr(obj({ exact: S, prefix: S })) }),
  metadata: obj({ annotations: map() }),
});
const policyBase = {
  tier: S,
  order: N,
  ingress: arr(rule),
  egress: arr(rule),
  selector: S,
  types: SL,
  serviceAccountSelector: S,
  performanceHints: SL,
};
const conditions = arr(
  obj({ type: S, status: S, reason: S, message: S, lastTransitionTime: S, observedGeneration: I }),
);
const secretKeyRef = obj({ secretKeyRef: obj({ name: S, key: S, optional: B }) });
const serviceCIDRs = arr(obj({ cidr: S }));

function felixField(ft) {
  switch (ft.t) {
    case 'bool':
      return B;
    case 'int':
      return I;
    case 'strings':
    case 'cidrs':
      return SL;
    case 'port':
    case 'dscp':
      return intOrString;
    case 'ports':
      return arr(intOrString);
    case 'protoPorts':
      return arr(obj({ protocol: S, port: I, net: S }));
    case 'stringMap':
      return map();
    case 'conntrackTimeouts':
      return obj(Object.fromEntries(['creationGracePeriod', 'tcpSynSent', 'tcpEstablished', 'tcpFinsSeen', 'tcpResetSeen', 'udpTimeout', 'genericTimeout', 'icmpTimeout'].map((k) => [k, S])));
    case 'routeTableRange':
      return obj({ min: I, max: I });
    case 'routeTableRanges':
      return arr(obj({ min: I, max: I }));
    case 'healthTimeoutOverrides':
      return arr(obj({ name: S, timeout: S }));
    default:
      return S; // string, duration, enum, regexp, selector, ip, iface, keyValueList, pattern
  }
}
const felixSpec = obj(Object.fromEntries(Object.entries(FELIX_FIELDS).map(([k, ft]) => [k, felixField(ft)])));

// CalicoNodeStatus status (Calico's types: BGPDaemonStatus, CalicoNodePeer, CalicoNodeRoute).
const birdStatus = obj({ state: S, version: S, routerID: S, lastBootTime: S, lastReconfigurationTime: S });
const bgpPeer = obj({ peerIP: S, type: S, state: S, since: S });
const route = obj({ type: S, destination: S, gateway: S, interface: S, learnedFrom: obj({ sourceType: S, peerIP: S }) });
const tortieEvent = obj({ at: S, reason: S });
const tortieNodeFacts = obj({
  agentVersion: S,
  nodeIP: S,
  startedAt: S,
  restarts: I,
  uncleanRestarts: I,
  lastRestarts: arr(obj({ at: S, reason: S, previousPid: I, clean: B })),
  ready: B,
  notReadyReasons: SL,
  readinessFlips: arr(obj({ at: S, ready: B, reason: S })),
  poolEnv: map(),
  poolDrift: arr(obj({ variable: S, envValue: S, pool: S, field: S, expected: S, actual: S, message: S })),
  felixEnv: map(),
  networkingBackend: S,
  birdSettings: map(),
  mtu: obj({ pod: I, underlay: I, underlayInterface: S, podInterfaces: arr(I) }),
  kernel: map(),
  nftTables: SL,
  policy: obj({ passes: I, repairs: I, lastRepairs: arr(tortieEvent) }),
  routeChanges: arr(obj({ at: S, destination: S, from: S, to: S })),
  birdRestarts: arr(tortieEvent),
  bgpPeerReasons: map(),
});

const kccControllers = obj({
  node: obj({
    reconcilerPeriod: S,
    syncLabels: S,
    leakGracePeriod: S,
    hostEndpoint: obj({
      autoCreate: S,
      createDefaultHostEndpoint: S,
      templates: arr(obj({ generateName: S, interfaceCIDRs: SL, interfacePattern: S, labels: map(), annotations: map(), nodeSelector: S })),
    }),
  }),
  policy: obj({ reconcilerPeriod: S }),
  workloadEndpoint: obj({ reconcilerPeriod: S }),
  serviceAccount: obj({ reconcilerPeriod: S }),
  namespace: obj({ reconcilerPeriod: S }),
  loadBalancer: obj({ assignIPs: S }),
  migration: obj({ policyNameMigrator: S }),
});
const kccSpec = obj({
  logSeverityScreen: S,
  healthChecks: S,
  etcdV3CompactionPeriod: S,
  prometheusMetricsPort: I,
  debugProfilePort: I,
  controllers: kccControllers,
});

// ---- the kinds --------------------------------------------------------------------------------
/** [plural, kind, scope, shortNames, spec schema, status schema?] */
const KINDS = [
  ['bgpconfigurations', 'BGPConfiguration', 'Cluster', [], obj({
    logSeverityScreen: S,
    nodeToNodeMeshEnabled: B,
    asNumber: I,
    serviceLoadBalancerIPs: serviceCIDRs,
    serviceExternalIPs: serviceCIDRs,
    serviceClusterIPs: serviceCIDRs,
    serviceLoadBalancerAggregation: S,
    communities: arr(obj({ name: S, value: S })),
    prefixAdvertisements: arr(obj({ cidr: S, communities: SL })),
    listenPort: I,
    nodeMeshPassword: secretKeyRef,
    nodeMeshMaxRestartTime: S,
    bindMode: S,
    ignoredInterfaces: SL,
    localWorkloadPeeringIPV4: S,
    localWorkloadPeeringIPV6: S,
    programClusterRoutes: S,
    ipv4NormalRoutePriority: I,
    ipv6NormalRoutePriority: I,
  })],
  ['bgpfilters', 'BGPFilter', 'Cluster', [], obj(Object.fromEntries(['exportV4', 'importV4', 'exportV6', 'importV6'].map((k) => [k, arr(obj({
    action: S, matchOperator: S, cidr: S, prefixLength: obj({ min: I, max: I }), source: S, interface: S,
  }))])))],
  ['bgppeers', 'BGPPeer', 'Cluster', [], obj({
    node: S,
    nodeSelector: S,
    peerIP: S,
    asNumber: I,
    localASNumber: I,
    peerSelector: S,
    keepOriginalNextHop: B,
    nextHopMode: S,
    password: secretKeyRef,
    sourceAddress: S,
    maxRestartTime: S,
    keepaliveTime: S,
    numAllowedLocalASNumbers: I,
    ttlSecurity: I,
    reachableBy: S,
    filters: SL,
    localWorkloadSelector: S,
    reversePeering: S,
  })],
  ['blockaffinities', 'BlockAffinity', 'Cluster', [], obj({ state: S, node: S, type: S, cidr: S, deleted: S }, { required: ['cidr', 'deleted', 'node', 'state'] })],
  ['caliconodestatuses', 'CalicoNodeStatus', 'Cluster', [], obj({ node: S, classes: SL, updatePeriodSeconds: I }),
    obj({
      lastUpdated: S,
      agent: obj({ birdV4: birdStatus, birdV6: birdStatus }),
      bgp: obj({ numberEstablishedV4: I, numberEstablishedV6: I, numberNotEstablishedV4: I, numberNotEstablishedV6: I, peersV4: arr(bgpPeer), peersV6: arr(bgpPeer) }),
      routes: obj({ routesV4: arr(route), routesV6: arr(route) }),
      // Tortie's node facts for `tortiectl cluster check` (not Calico's; its readers ignore it).
      tortie: tortieNodeFacts,
    })],
  ['clusterinformations', 'ClusterInformation', 'Cluster', [], obj({ clusterGUID: S, clusterType: S, calicoVersion: S, datastoreReady: B, variant: S })],
  ['felixconfigurations', 'FelixConfiguration', 'Cluster', [], felixSpec],
  ['globalnetworkpolicies', 'GlobalNetworkPolicy', 'Cluster', [], obj({ ...policyBase, doNotTrack: B, preDNAT: B, applyOnForward: B, namespaceSelector: S }),
    obj({ conditions })],
  ['globalnetworksets', 'GlobalNetworkSet', 'Cluster', [], obj({ nets: SL })],
  ['hostendpoints', 'HostEndpoint', 'Cluster', [], obj({
    node: S, interfaceName: S, expectedIPs: SL, profiles: SL, ports: arr(obj({ name: S, protocol: intOrString, port: I })),
  })],
  ['ipamblocks', 'IPAMBlock', 'Cluster', [], obj({
    cidr: S,
    affinity: S,
    affinityClaimTime: S,
    strictAffinity: B,
    allocations: arr({ type: 'integer', nullable: true }),
    unallocated: arr(I),
    attributes: arr(obj({ handle_id: S, secondary: map() })),
    deleted: B,
    sequenceNumber: I,
    sequenceNumberForAllocation: map(I),
  }, { required: ['allocations', 'attributes', 'cidr', 'strictAffinity', 'unallocated'] })],
  ['ipamconfigs', 'IPAMConfig', 'Cluster', [], obj({
    strictAffinity: B, autoAllocateBlocks: B, maxBlocksPerHost: I, kubeVirtVMAddressPersistence: S, ipCooldownSeconds: I,
  })],
  ['ipamhandles', 'IPAMHandle', 'Cluster', [], obj({ handleID: S, block: map(I), deleted: B }, { required: ['block', 'handleID'] })],
  ['ippools', 'IPPool', 'Cluster', [], obj({
    cidr: S,
    vxlanMode: S,
    ipipMode: S,
    natOutgoing: B,
    disabled: B,
    disableBGPExport: B,
    blockSize: I,
    nodeSelector: S,
    namespaceSelector: S,
    allowedUses: SL,
    assignmentMode: S,
    // Calico v1 fields, folded into ipipMode/natOutgoing on read.
    ipip: obj({ enabled: B, mode: S }),
    'nat-outgoing': B,
  }), obj({ conditions })],
  ['ipreservations', 'IPReservation', 'Cluster', [], obj({ reservedCIDRs: SL })],
  ['kubecontrollersconfigurations', 'KubeControllersConfiguration', 'Cluster', [], kccSpec,
    obj({ runningConfig: kccSpec, environmentVars: map() })],
  ['networkpolicies', 'NetworkPolicy', 'Namespaced', [], obj(policyBase), obj({ conditions })],
  ['networksets', 'NetworkSet', 'Namespaced', [], obj({ nets: SL })],
  ['tiers', 'Tier', 'Cluster', [], obj({ order: N, defaultAction: S }), obj({ conditions })],
];

function crd([plural, kind, scope, shortNames, spec, status]) {
  const properties = { apiVersion: S, kind: S, metadata: { type: 'object' }, spec };
  if (status) properties.status = status;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.crd.projectcalico.org` },
    spec: {
      group: 'crd.projectcalico.org',
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase(), ...(shortNames.length ? { shortNames } : {}) },
      preserveUnknownFields: false,
      scope,
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties } } }],
    },
  };
}

const header = `# Calico's crd.projectcalico.org/v1 CustomResourceDefinitions (the v3.29 set of 19) for the
# Kubernetes datastore, with structural schemas of the fields Tortie reads and writes.
# Generated by scripts/gen-crds.mjs; do not edit. Apply with: kubectl apply -f manifests/crds.yaml
`;
const text = header + KINDS.map((k) => '---\n' + stringify(crd(k), { lineWidth: 0, aliasDuplicateObjects: false })).join('');
const out = `${root}manifests/crds.yaml`;
// manifests/tortie.yaml (the install manifest) carries the same CRDs between two marker lines: one
// source of truth, spliced in here and checked with the rest.
const manifest = `${root}manifests/tortie.yaml`;
const BEGIN = '# ---- BEGIN CRDs: generated by scripts/gen-crds.mjs (the same as manifests/crds.yaml); do not edit ----\n';
const END = '# ---- END CRDs ----\n';
function withCRDs(cur) {
  const b = cur.indexOf(BEGIN);
  const e = cur.indexOf(END);
  if (b < 0 || e < b) throw new Error(`${manifest} lacks the CRD marker lines (${BEGIN.trim()} … ${END.trim()})`);
  const body = KINDS.map((k) => '---\n' + stringify(crd(k), { lineWidth: 0, aliasDuplicateObjects: false })).join('');
  return cur.slice(0, b) + BEGIN + body + END + cur.slice(e + END.length);
}
let manifestText = '';
try {
  manifestText = readFileSync(manifest, 'utf8');
} catch {}
if (process.argv.includes('--check')) {
  let cur = '';
  try {
    cur = readFileSync(out, 'utf8');
  } catch {}
  if (cur !== text) {
    console.error('manifests/crds.yaml is out of date: run node scripts/gen-crds.mjs');
    process.exit(1);
  }
  if (manifestText && withCRDs(manifestText) !== manifestText) {
    console.error('manifests/tortie.yaml\'s CRDs are out of date: run node scripts/gen-crds.mjs');
    process.exit(1);
  }
} else {
  mkdirSync(`${root}manifests`, { recursive: true });
  writeFileSync(out, text);
  console.log(`wrote ${out}: ${KINDS.length} CRDs`);
  if (manifestText) {
    writeFileSync(manifest, withCRDs(manifestText));
    console.log(`updated the CRDs in ${manifest}`);
  }
}
