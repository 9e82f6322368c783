// One object of every CRD-backed v3 kind with every field Tortie's v3 types define filled in (FelixConfiguration:
// every field of FELIX_FIELDS with a valid value), for round trips through the Kubernetes API, which
// prunes any field its CRD schema does not name (manifests/crds.yaml).
import { FELIX_FIELDS, type FelixFieldType } from '../libcalico-go/lib/apis/v3/validate/felix-fields.js';

const meta = (name: string, namespace?: string) => ({
  name,
  ...(namespace ? { namespace } : {}),
  labels: { app: 'web', 'projectcalico.org/owner': 'tortie' },
  annotations: { note: 'kept', 'operator.tigera.io/x': 'y' },
});

const rule = (action: string) => ({
  action,
  ipVersion: 4,
  protocol: 'TCP',
  source: {
    nets: ['10.0.0.0/8'],
    notNets: ['10.1.0.0/16'],
    selector: 'role == "client"',
    notSelector: 'role == "bad"',
    namespaceSelector: 'env == "prod"',
    notPorts: [22],
    serviceAccounts: { names: ['sa1'], selector: 'team == "a"' },
  },
  destination: { ports: [80, 'http', '8000:8080'], notNets: ['10.9.0.0/16'] },
  metadata: { annotations: { why: 'sample' } },
});
const icmpRule = { action: 'Allow', protocol: 'ICMP', icmp: { type: 8, code: 0 }, notICMP: { type: 3, code: 1 } };
const notProtoRule = { action: 'Deny', notProtocol: 'UDP' };
const serviceRule = { action: 'Allow', destination: { services: { name: 'kube-dns', namespace: 'kube-system' } } };

function felixValue(k: string, ft: FelixFieldType): unknown {
  switch (ft.t) {
    case 'bool':
      return true;
    case 'int':
      return ft.min !== undefined && ft.min > 1 ? ft.min : Math.min(ft.max ?? 10, 10);
    case 'duration':
      return '1m30s';
    case 'enum':
      return ft.values.find((v) => v !== '') ?? ft.values[0];
    case 'strings':
      return ['eth0', 'eth1'];
    case 'cidrs':
      return ['10.0.0.0/8'];
    case 'regexp':
      return '^cali.*';
    case 'ports':
      return ['30000:32767'];
    case 'port':
      return '20000:29999';
    case 'protoPorts':
      return [{ protocol: 'TCP', port: 22, net: '0.0.0.0/0' }, { protocol: 'UDP', port: 53 }];
    case 'stringMap':
      return { all: 'tcp port 80' };
    case 'conntrackTimeouts':
      return { creationGracePeriod: '10s', tcpEstablished: '1h', udpTimeout: '60s' };
    case 'routeTableRange':
      return { min: 1, max: 250 };
    case 'routeTableRanges':
      return [{ min: 1, max: 250 }];
    case 'healthTimeoutOverrides':
      return [{ name: 'InternalDataplaneMainLoop', timeout: '30s' }];
    case 'selector':
      return 'all()';
    case 'ip':
      return ft.version === 4 ? '169.254.169.254' : 'fd00::1';
    case 'iface':
      return 'eth0';
    case 'dscp':
      return 'AF11';
    case 'keyValueList':
      return 'a=b,c=d';
    case 'pattern':
      return k === 'logActionRateLimit' ? '10/second' : 'calico-packet';
    default:
      return 'x';
  }
}

export function felixSpecSample(): Record<string, unknown> {
  const spec: Record<string, unknown> = {};
  for (const [k, ft] of Object.entries(FELIX_FIELDS)) spec[k] = felixValue(k, ft);
  return spec;
}

const kcc = {
  logSeverityScreen: 'Info',
  healthChecks: 'Enabled',
  etcdV3CompactionPeriod: '10m0s',
  prometheusMetricsPort: 9094,
  debugProfilePort: 0,
  controllers: {
    node: {
      reconcilerPeriod: '5m0s',
      syncLabels: 'Enabled',
      leakGracePeriod: '15m0s',
      hostEndpoint: {
        autoCreate: 'Enabled',
        createDefaultHostEndpoint: 'Enabled',
        templates: [{ generateName: 'tpl', interfaceCIDRs: ['10.0.0.0/8'], interfacePattern: 'eth.*', labels: { a: 'b' }, annotations: { c: 'd' }, nodeSelector: 'all()' }],
      },
    },
    policy: { reconcilerPeriod: '5m0s' },
    workloadEndpoint: { reconcilerPeriod: '5m0s' },
    serviceAccount: { reconcilerPeriod: '5m0s' },
    namespace: { reconcilerPeriod: '5m0s' },
    loadBalancer: { assignIPs: 'AllServices' },
    migration: { policyNameMigrator: 'Enabled' },
  },
};

/**
 * Full objects, one per CRD-backed v3 kind. Stored as they are (not through Tortie's validation,
 * which refuses some of these values — HostEndpoints, wireguardEnabled — that Calico may have stored
 * and Tortie must still read back unchanged).
 */
export function fullSamples(ns: string): Record<string, unknown>[] {
  const v3 = (kind: string, metadata: unknown, spec: unknown, status?: unknown) => ({
    apiVersion: 'projectcalico.org/v3',
    kind,
    metadata,
    spec,
    ...(status ? { status } : {}),
  });
  return [
    v3('IPPool', meta('full-pool'), {
      cidr: '10.200.0.0/16',
      vxlanMode: 'CrossSubnet',
      ipipMode: 'Never',
      natOutgoing: true,
      disabled: true,
      disableBGPExport: true,
      blockSize: 27,
      nodeSelector: 'zone == "a"',
      namespaceSelector: 'env == "prod"',
      allowedUses: ['Workload'],
      assignmentMode: 'Manual',
    }),
    v3('IPReservation', meta('full-res'), { reservedCIDRs: ['10.200.0.0/28', '10.200.1.5'] }),
    v3('IPAMConfiguration', meta('default'), { strictAffinity: true, autoAllocateBlocks: false, maxBlocksPerHost: 7 }),
    v3('HostEndpoint', meta('full-hep'), {
      node: 'w1',
      interfaceName: 'eth0',
      expectedIPs: ['192.168.1.10'],
      profiles: ['p1'],
      ports: [{ name: 'ssh', protocol: 'TCP', port: 22 }],
    }),
    v3('NetworkPolicy', meta('full-np', ns), {
      tier: 'default',
      order: 10.5,
      ingress: [rule('Allow'), icmpRule, notProtoRule],
      egress: [rule('Deny'), serviceRule],
      selector: 'app == "web"',
      types: ['Ingress', 'Egress'],
      serviceAccountSelector: 'sa == "x"',
      performanceHints: ['AssumeNeededOnEveryNode'],
    }),
    v3('GlobalNetworkPolicy', meta('full-gnp'), {
      tier: 'default',
      order: 100,
      ingress: [rule('Allow')],
      egress: [rule('Pass')],
      selector: 'all()',
      types: ['Ingress', 'Egress'],
      namespaceSelector: 'env == "prod"',
      serviceAccountSelector: 'sa == "x"',
      applyOnForward: false,
      doNotTrack: false,
      preDNAT: false,
      performanceHints: ['AssumeNeededOnEveryNode'],
    }),
    v3('NetworkSet', meta('full-ns', ns), { nets: ['10.3.0.0/16', '192.168.9.9/32'] }),
    v3('GlobalNetworkSet', meta('full-gns'), { nets: ['10.4.0.0/16'] }),
    v3('Tier', meta('full-tier'), { order: 300, defaultAction: 'Pass' }),
    v3('BGPConfiguration', meta('default'), {
      logSeverityScreen: 'Debug',
      nodeToNodeMeshEnabled: true,
      asNumber: 64512,
      serviceLoadBalancerIPs: [{ cidr: '10.5.0.0/24' }],
      serviceExternalIPs: [{ cidr: '10.6.0.0/24' }],
      serviceClusterIPs: [{ cidr: '10.96.0.0/12' }],
      serviceLoadBalancerAggregation: 'Disabled',
      communities: [{ name: 'c1', value: '64512:100' }],
      prefixAdvertisements: [{ cidr: '10.200.0.0/16', communities: ['c1', '64512:200'] }],
      listenPort: 179,
      nodeMeshPassword: { secretKeyRef: { name: 'bgp', key: 'mesh' } },
      nodeMeshMaxRestartTime: '2m0s',
      bindMode: 'NodeIP',
      ignoredInterfaces: ['docker*'],
      localWorkloadPeeringIPV4: '169.254.0.179',
      localWorkloadPeeringIPV6: 'fd00::179',
      programClusterRoutes: 'Enabled',
      ipv4NormalRoutePriority: 1024,
      ipv6NormalRoutePriority: 1024,
    }),
    v3('BGPPeer', meta('full-peer'), {
      nodeSelector: 'rr == "true"',
      peerSelector: 'rr == "true"',
      localASNumber: 64514,
      keepOriginalNextHop: true,
      password: { secretKeyRef: { name: 'bgp', key: 'peer' } },
      sourceAddress: 'None',
      maxRestartTime: '3m0s',
      keepaliveTime: '30s',
      numAllowedLocalASNumbers: 2,
      ttlSecurity: 1,
      filters: ['f1'],
    }),
    v3('BGPPeer', meta('full-peer-ip'), {
      node: 'w1',
      peerIP: '192.168.1.1:1179',
      asNumber: 64513,
      nextHopMode: 'Self',
      reachableBy: '192.168.1.254',
      reversePeering: 'Manual',
    }),
    v3('FelixConfiguration', meta('default'), felixSpecSample()),
    v3('ClusterInformation', meta('default'), { clusterGUID: 'abcdef0123456789abcdef0123456789', clusterType: 'k8s,bgp,kdd', calicoVersion: 'v3.29.1', datastoreReady: true, variant: 'Calico' }),
    v3('CalicoNodeStatus', meta('w1'), { node: 'w1', classes: ['Agent', 'BGP', 'Routes'], updatePeriodSeconds: 10 }, nodeStatusSample()),
    v3('KubeControllersConfiguration', meta('default'), kcc, { runningConfig: kcc, environmentVars: { ENABLED_CONTROLLERS: 'node' } }),
  ];
}

/** A CalicoNodeStatus status as tortie-node writes it: Calico's classes and Tortie's facts. */
function nodeStatusSample(): Record<string, unknown> {
  const bird = { state: 'Ready', version: '2.0.12', routerID: '10.0.0.11', lastBootTime: '2026-12-04 19:23:03.663', lastReconfigurationTime: '2026-12-04 19:23:03.663' };
  return {
    lastUpdated: '2026-12-04T19:23:06Z',
    agent: { birdV4: bird, birdV6: { ...bird, state: 'NotReady' } },
    bgp: {
      numberEstablishedV4: 1,
      numberNotEstablishedV4: 1,
      numberEstablishedV6: 0,
      numberNotEstablishedV6: 0,
      peersV4: [
        { peerIP: '10.0.0.12', type: 'NodeMesh', state: 'Established', since: '19:23:05.408' },
        { peerIP: '10.0.0.13', type: 'NodeMesh', state: 'Active', since: '19:23:05.605' },
      ],
      peersV6: [],
    },
    routes: {
      routesV4: [{ type: 'FIB', destination: '10.233.109.0/24', gateway: '10.0.0.12', interface: 'eth0', learnedFrom: { sourceType: 'NodeMesh', peerIP: '10.0.0.12' } }],
      routesV6: [],
    },
    tortie: {
      agentVersion: 'v0.1.0',
      nodeIP: '10.0.0.11',
      startedAt: '2026-12-04T19:23:03.472Z',
      restarts: 2,
      uncleanRestarts: 1,
      lastRestarts: [{ at: '2026-12-04T19:23:03.472Z', reason: 'killed', previousPid: 42, clean: false }],
      ready: false,
      notReadyReasons: ['routes: BGP not established with 10.0.0.13 (Active)'],
      readinessFlips: [{ at: '2026-12-04T19:23:06.511Z', ready: false, reason: 'routes: BGP' }],
      poolEnv: { CALICO_IPV4POOL_IPIP: 'Off' },
      poolDrift: [{ variable: 'CALICO_IPV4POOL_IPIP', envValue: 'Off', pool: 'default-pool', field: 'ipipMode', expected: 'Never', actual: 'Always', message: 'm' }],
      felixEnv: { FELIX_HEALTHENABLED: 'true' },
      networkingBackend: 'bird',
      birdSettings: { asNumber: '64512', peers: 'mesh 2, global 0, node 0' },
      mtu: { pod: 1440, underlay: 1500, underlayInterface: 'eth0', podInterfaces: [1440] },
      kernel: { 'net.ipv4.ip_forward': '1' },
      nftTables: ['inet tortie-filter'],
      policy: { passes: 3, repairs: 1, lastRepairs: [{ at: '2026-12-04T19:23:06Z', reason: 'r' }] },
      routeChanges: [{ at: '2026-12-04T19:23:06Z', destination: '10.233.109.0/24', from: '10.0.0.12', to: '10.0.0.13' }],
      birdRestarts: [{ at: '2026-12-04T19:23:06Z', reason: 'BIRD started again' }],
      bgpPeerReasons: { '10.0.0.13': 'Socket: Connection refused' },
    },
  };
}
