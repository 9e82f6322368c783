import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Resource } from './resource.js';
import { ValidationError, validateResource, validateResources } from './validate.js';
import { effectiveBGPConfiguration, normalizeEncapMode, workloadEndpointName } from './index.js';

const V3 = 'projectcalico.org/v3';

function res(kind: string, name: string | undefined, spec: Record<string, unknown>, extraMeta: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: V3, kind, metadata: { ...(name === undefined ? {} : { name }), ...extraMeta }, spec };
}

const seedPool = {
  apiVersion: V3,
  kind: 'IPPool',
  metadata: { name: 'default-pool' },
  spec: {
    blockSize: 24,
    cidr: '10.233.64.0/18',
    ipipMode: 'Always',
    natOutgoing: true,
    nodeSelector: 'all()',
    vxlanMode: 'Never',
  },
};

function refused(r: unknown, path: string, value: string, opts: { existing?: { pools?: Resource[] }; also?: string } = {}): ValidationError {
  let err: unknown;
  try {
    validateResource(r, opts.existing);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ValidationError, `expected a ValidationError for ${JSON.stringify(r)}, got ${String(err)}`);
  assert.ok(err.message.includes(`${path}: `), `message ${JSON.stringify(err.message)} should name the path ${path}`);
  assert.ok(err.message.includes(value), `message ${JSON.stringify(err.message)} should name the value ${value}`);
  if (opts.also) assert.ok(err.message.includes(opts.also), `message ${JSON.stringify(err.message)} should contain ${JSON.stringify(opts.also)}`);
  assert.ok(err.issues.some((i) => i.path === path), `issues ${JSON.stringify(err.issues.map((i) => i.path))} should include ${path}`);
  return err;
}

describe('IPPool', () => {
  it('accepts the seed pool and keeps it canonical', () => {
    const out = validateResource(seedPool);
    assert.deepEqual(out, {
      apiVersion: V3,
      kind: 'IPPool',
      metadata: { name: 'default-pool' },
      spec: {
        allowedUses: ['Workload', 'Tunnel'],
        assignmentMode: 'Automatic',
        blockSize: 24,
        cidr: '10.233.64.0/18',
        ipipMode: 'Always',
        natOutgoing: true,
        nodeSelector: 'all()',
        vxlanMode: 'Never',
      },
    });
    // Keys come out sorted, as calicoctl prints them.
    assert.deepEqual(Object.keys(out.spec!), [...Object.keys(out.spec!)].sort());
    // Validating the output again is a fixed point.
    assert.deepEqual(validateResource(out), out);
  });

  it('stores ipipMode Off (the seed env value) as Never', () => {
    const out = validateResource(res('IPPool', 'p', { cidr: '10.1.0.0/16', ipipMode: 'Off' }));
    assert.equal(out.spec!.ipipMode, 'Never');
    for (const [input, want] of [
      ['off', 'Never'],
      ['OFF', 'Never'],
      ['false', 'Never'],
      [false, 'Never'],
      ['', 'Never'],
      ['never', 'Never'],
      ['always', 'Always'],
      [true, 'Always'],
      ['true', 'Always'],
      ['cross-subnet', 'CrossSubnet'],
      ['crosssubnet', 'CrossSubnet'],
      ['CrossSubnet', 'CrossSubnet'],
    ] as const) {
      assert.equal(normalizeEncapMode(input), want, `normalizeEncapMode(${JSON.stringify(input)})`);
      const r = validateResource(res('IPPool', 'p', { cidr: '10.1.0.0/16', ipipMode: input }));
      assert.equal(r.spec!.ipipMode, want);
    }
  });

  it('fills the defaults', () => {
    const v4 = validateResource(res('IPPool', 'p4', { cidr: '192.168.0.0/16' }));
    assert.deepEqual(v4.spec, {
      allowedUses: ['Workload', 'Tunnel'],
      assignmentMode: 'Automatic',
      blockSize: 26,
      cidr: '192.168.0.0/16',
      ipipMode: 'Never',
      nodeSelector: 'all()',
      vxlanMode: 'Never',
    });
    const v6 = validateResource(res('IPPool', 'p6', { cidr: 'fd00:0:0::/48', vxlanMode: 'Always', nodeSelector: '' }));
    assert.equal(v6.spec!.blockSize, 122);
    assert.equal(v6.spec!.cidr, 'fd00::/48');
    assert.equal(v6.spec!.nodeSelector, 'all()');
    assert.equal(v6.spec!.vxlanMode, 'Always');
  });

  it('drops false omitempty booleans and keeps true ones', () => {
    const out = validateResource(res('IPPool', 'p', { cidr: '10.0.0.0/8', natOutgoing: false, disabled: true, disableBGPExport: false }));
    assert.equal(out.spec!.natOutgoing, undefined);
    assert.equal(out.spec!.disabled, true);
    assert.equal(out.spec!.disableBGPExport, undefined);
  });

  it('allows a block larger than a disabled pool (Calico’s exception)', () => {
    const out = validateResource(res('IPPool', 'p', { cidr: '10.0.0.0/28', disabled: true }));
    assert.equal(out.spec!.blockSize, 26);
  });

  it('checks overlap against other pools, but not against itself', () => {
    const existing = { pools: [validateResource(seedPool)] };
    assert.doesNotThrow(() => validateResource(seedPool, existing));
    assert.doesNotThrow(() => validateResource(res('IPPool', 'other', { cidr: '10.233.128.0/18' }), existing));
    const e = refused(res('IPPool', 'p2', { cidr: '10.233.0.0/16' }), 'spec.cidr', '"10.233.0.0/16"', {
      existing,
      also: 'overlaps with IPPool "default-pool" (10.233.64.0/18)',
    });
    assert.ok(e.message.startsWith('IPPool "p2": '));
  });
});

describe('malformed resources are refused naming the field path and the value', () => {
  const pool = (spec: Record<string, unknown>, name = 'p1') => res('IPPool', name, { cidr: '10.0.0.0/16', ...spec });
  const rule = (r: Record<string, unknown>) => res('GlobalNetworkPolicy', 'gnp1', { selector: 'all()', ingress: [r] });
  const cases: Array<[string, unknown, string, string, string?]> = [
    ['block size out of range', pool({ blockSize: 33 }), 'spec.blockSize', '33', 'IPv4 block size must be 20–32'],
    ['v6 block size out of range', pool({ cidr: 'fd00::/48', blockSize: 100 }), 'spec.blockSize', '100', 'IPv6 block size must be 116–128'],
    ['block larger than pool', pool({ cidr: '10.0.0.0/28', blockSize: 26 }), 'spec.blockSize', '26', 'larger than the pool 10.0.0.0/28'],
    ['pool CIDR not a CIDR', pool({ cidr: '10.0.0.0/33' }), 'spec.cidr', '"10.0.0.0/33"', 'not a valid'],
    ['pool CIDR with host bits', pool({ cidr: '10.0.0.1/16' }), 'spec.cidr', '"10.0.0.1/16"', 'the network is 10.0.0.0/16'],
    ['pool CIDR missing', res('IPPool', 'p1', {}), 'spec.cidr', 'required field is missing'],
    ['pool in link-local', pool({ cidr: '169.254.0.0/16' }), 'spec.cidr', '"169.254.0.0/16"', 'link-local'],
    ['unknown ipipMode', pool({ ipipMode: 'Sometimes' }), 'spec.ipipMode', '"Sometimes"', 'Never, Always, CrossSubnet'],
    ['IPIP and VXLAN together', pool({ ipipMode: 'Always', vxlanMode: 'CrossSubnet' }), 'spec.ipipMode', '"Always"', 'cannot both be enabled'],
    ['IPIP on IPv6', pool({ cidr: 'fd00::/48', ipipMode: 'Always' }), 'spec.ipipMode', '"Always"', 'IPv6'],
    ['bad nodeSelector', pool({ nodeSelector: 'role == ' }), 'spec.nodeSelector', '"role == "', 'position 8'],
    ['natOutgoing not a boolean', pool({ natOutgoing: 'yes' }), 'spec.natOutgoing', '"yes"', 'true or false'],
    ['unknown allowedUse', pool({ allowedUses: ['Workload', 'Pods'] }), 'spec.allowedUses[1]', '"Pods"'],
    ['bad assignmentMode', pool({ assignmentMode: 'automatic' }), 'spec.assignmentMode', '"automatic"', 'did you mean "Automatic"'],
    ['unknown IPPool field', pool({ blocksize: 24 }), 'spec.blocksize', '24', 'did you mean "blockSize"'],
    ['wrong apiVersion', { ...pool({}), apiVersion: 'projectcalico.org/v1' }, 'apiVersion', '"projectcalico.org/v1"'],
    ['unknown kind', { apiVersion: V3, kind: 'IpPool', metadata: { name: 'x' }, spec: {} }, 'kind', '"IpPool"', 'did you mean "IPPool"'],
    ['missing name', { apiVersion: V3, kind: 'IPPool', metadata: {}, spec: { cidr: '10.0.0.0/16' } }, 'metadata.name', 'required field is missing'],
    ['upper-case name', pool({}, 'Pool_1'), 'metadata.name', '"Pool_1"', 'not a valid name'],
    ['namespace on a global kind', res('IPPool', 'p1', { cidr: '10.0.0.0/16' }, { namespace: 'ns1' }), 'metadata.namespace', '"ns1"', 'not a namespaced'],
    ['bad namespace', res('NetworkSet', 'ns1', {}, { namespace: 'Kube_System' }), 'metadata.namespace', '"Kube_System"'],
    ['label value not a string', res('HostEndpoint', 'h1', { node: 'n1', interfaceName: 'eth0' }, { labels: { tier: 1 } }), 'metadata.labels.tier', '1', 'must be a string'],
    ['bad label key', res('Profile', 'pr1', {}, { labels: { 'a b': 'c' } }), 'metadata.labels.a b', '"a b"'],
    ['unknown metadata field', res('Profile', 'pr1', {}, { nmae: 'x' }), 'metadata.nmae', '"x"', 'did you mean "name"'],
    ['reservation CIDR invalid', res('IPReservation', 'r1', { reservedCIDRs: ['10.0.0.0/8', '10.0.0/8'] }), 'spec.reservedCIDRs[1]', '"10.0.0/8"'],
    ['IPAM config name', res('IPAMConfiguration', 'cfg', {}), 'metadata.name', '"cfg"', 'must be named "default"'],
    ['IPAM maxBlocks without strictAffinity', res('IPAMConfiguration', 'default', { maxBlocksPerHost: 4 }), 'spec.maxBlocksPerHost', '4', 'requires strictAffinity'],
    ['IPAM nothing assignable', res('IPAMConfiguration', 'default', { strictAffinity: false, autoAllocateBlocks: false }), 'spec.autoAllocateBlocks', 'false'],
    ['IPAM negative maxBlocks', res('IPAMConfiguration', 'default', { strictAffinity: true, maxBlocksPerHost: -1 }), 'spec.maxBlocksPerHost', '-1'],
    ['node ipv4Address not v4', res('Node', 'n1', { bgp: { ipv4Address: 'fd00::1/64' } }), 'spec.bgp.ipv4Address', '"fd00::1/64"', 'not an IPv4'],
    ['node ipv4Address garbage', res('Node', 'n1', { bgp: { ipv4Address: '10.0.0.300/24' } }), 'spec.bgp.ipv4Address', '"10.0.0.300/24"'],
    ['node asNumber too big', res('Node', 'n1', { bgp: { asNumber: 4294967296 } }), 'spec.bgp.asNumber', '4294967296', '1–4294967295'],
    ['node dotted asNumber bad', res('Node', 'n1', { bgp: { asNumber: '1.70000' } }), 'spec.bgp.asNumber', '"1.70000"'],
    ['node VXLAN tunnel address', res('Node', 'n1', { ipv4VXLANTunnelAddr: '10.0.0.1/32' }), 'spec.ipv4VXLANTunnelAddr', '"10.0.0.1/32"'],
    ['node empty bgp', res('Node', 'n1', { bgp: {} }), 'spec.bgp', 'must not be empty'],
    [
      'WEP interface name too long',
      res('WorkloadEndpoint', undefined, { node: 'n1', orchestrator: 'k8s', pod: 'p', endpoint: 'eth0', interfaceName: 'cali0123456789abc' }),
      'spec.interfaceName',
      '"cali0123456789abc"',
      'at most 15',
    ],
    [
      'WEP network not a single address',
      res('WorkloadEndpoint', undefined, { node: 'n1', orchestrator: 'k8s', pod: 'p', endpoint: 'eth0', interfaceName: 'cali1', ipNetworks: ['10.0.0.0/24'] }),
      'spec.ipNetworks[0]',
      '"10.0.0.0/24"',
      'more than one address',
    ],
    [
      'WEP bad MAC',
      res('WorkloadEndpoint', undefined, { node: 'n1', orchestrator: 'k8s', pod: 'p', endpoint: 'eth0', interfaceName: 'cali1', mac: '12:34:56' }),
      'spec.mac',
      '"12:34:56"',
    ],
    [
      'WEP name does not match',
      res('WorkloadEndpoint', 'wrong', { node: 'n1', orchestrator: 'k8s', pod: 'p', endpoint: 'eth0', interfaceName: 'cali1' }),
      'metadata.name',
      '"wrong"',
      'expected "n1-k8s-p-eth0"',
    ],
    ['WEP missing pod', res('WorkloadEndpoint', undefined, { node: 'n1', orchestrator: 'k8s', endpoint: 'eth0', interfaceName: 'cali1' }), 'spec.pod', 'required field is missing'],
    ['HEP without node', res('HostEndpoint', 'h1', { interfaceName: 'eth0' }), 'spec.node', 'required field is missing'],
    ['HEP bad expected IP', res('HostEndpoint', 'h1', { node: 'n1', expectedIPs: ['10.0.0.256'] }), 'spec.expectedIPs[0]', '"10.0.0.256"'],
    ['profile labelsToApply bad value', res('Profile', 'pr1', { labelsToApply: { a: 'has space' } }), 'spec.labelsToApply.a', '"has space"'],
    ['policy order not a number', res('NetworkPolicy', 'np1', { order: 'first' }, { namespace: 'ns1' }), 'spec.order', '"first"'],
    ['policy selector invalid', res('NetworkPolicy', 'np1', { selector: "a == 'x' && && b" }), 'spec.selector', `"a == 'x' && && b"`, 'unexpected token "&&"'],
    ['policy global() selector', res('GlobalNetworkPolicy', 'gnp1', { selector: 'global()' }), 'spec.selector', '"global()"', 'may not use global()'],
    ['policy types unknown', res('GlobalNetworkPolicy', 'gnp1', { types: ['Ingress', 'Forward'] }), 'spec.types[1]', '"Forward"'],
    ['policy types repeated', res('GlobalNetworkPolicy', 'gnp1', { types: ['Ingress', 'Ingress'] }), 'spec.types', '["Ingress","Ingress"]', 'more than once'],
    ['policy name with two dots', res('GlobalNetworkPolicy', 'a.b.c', {}), 'metadata.name', '"a.b.c"'],
    ['rule action unknown', rule({ action: 'Accept' }), 'spec.ingress[0].action', '"Accept"'],
    ['rule action missing', rule({ protocol: 'TCP' }), 'spec.ingress[0].action', 'required field is missing'],
    ['rule protocol lower-case', rule({ action: 'Allow', protocol: 'tcp' }), 'spec.ingress[0].protocol', '"tcp"', 'did you mean "TCP"'],
    ['rule protocol number 0', rule({ action: 'Allow', protocol: 0 }), 'spec.ingress[0].protocol', '0', '1–255'],
    ['rule protocol number 256', rule({ action: 'Allow', protocol: 256 }), 'spec.ingress[0].protocol', '256'],
    [
      'ports with ICMP',
      rule({ action: 'Allow', protocol: 'ICMP', destination: { ports: [80] } }),
      'spec.ingress[0].destination.ports[0]',
      '80',
      'only allowed with protocol TCP, UDP or SCTP (protocol is "ICMP")',
    ],
    ['numeric port without protocol', rule({ action: 'Allow', destination: { ports: [443] } }), 'spec.ingress[0].destination.ports[0]', '443', 'protocol is not set'],
    ['port out of range', rule({ action: 'Allow', protocol: 'TCP', destination: { ports: [70000] } }), 'spec.ingress[0].destination.ports[0]', '70000'],
    ['port range reversed', rule({ action: 'Allow', protocol: 'UDP', source: { ports: ['2000:1000'] } }), 'spec.ingress[0].source.ports[0]', '"2000:1000"', 'greater than maximum'],
    ['bad named port', rule({ action: 'Allow', protocol: 'TCP', destination: { ports: ['http port'] } }), 'spec.ingress[0].destination.ports[0]', '"http port"'],
    ['rule net invalid', rule({ action: 'Deny', source: { nets: ['10.0.0.0/8', 'ten/8'] } }), 'spec.ingress[0].source.nets[1]', '"ten/8"'],
    ['rule net with host bits', rule({ action: 'Deny', destination: { nets: ['10.1.2.3/8'] } }), 'spec.ingress[0].destination.nets[0]', '"10.1.2.3/8"'],
    ['rule mixes IP versions', rule({ action: 'Deny', source: { nets: ['10.0.0.0/8'] }, destination: { nets: ['fd00::/8'] } }), 'spec.ingress[0].destination.nets[0]', '"fd00::/8"', 'mixes IP versions'],
    ['rule ipVersion vs nets', rule({ action: 'Deny', ipVersion: 6, source: { nets: ['10.0.0.0/8'] } }), 'spec.ingress[0].source.nets[0]', '"10.0.0.0/8"', 'ipVersion 6'],
    ['rule selector invalid', rule({ action: 'Allow', source: { selector: 'has(a' } }), 'spec.ingress[0].source.selector', '"has(a"'],
    ['ICMP code without type', rule({ action: 'Allow', protocol: 'ICMP', icmp: { code: 3 } }), 'spec.ingress[0].icmp.code', '3', 'type'],
    ['ICMP with ipVersion 6', rule({ action: 'Allow', protocol: 'ICMP', ipVersion: 6 }), 'spec.ingress[0].protocol', '"ICMP"', 'ipVersion 4'],
    ['unknown rule field', rule({ action: 'Allow', dst: {} }), 'spec.ingress[0].dst', '{}'],
    // Host endpoint policy is not enforced by Tortie: its flags are refused (Calico's checks of
    // their combinations are moot).
    ['preDNAT', res('GlobalNetworkPolicy', 'gnp1', { preDNAT: true, applyOnForward: true }), 'spec.preDNAT', 'true', 'host endpoint policy is not enforced by Tortie'],
    ['doNotTrack', res('GlobalNetworkPolicy', 'gnp1', { doNotTrack: true, applyOnForward: true }), 'spec.doNotTrack', 'true', 'host endpoint policy is not enforced by Tortie'],
    ['applyOnForward', res('GlobalNetworkPolicy', 'gnp1', { applyOnForward: true }), 'spec.applyOnForward', 'true', 'host endpoint policy is not enforced by Tortie'],
    ['HostEndpoint', res('HostEndpoint', 'h1', { node: 'n1', interfaceName: 'eth0' }), 'kind', '"HostEndpoint"', 'host endpoint policy is not enforced by Tortie'],
    // No L7 enforcement: an Allow limited to GET would allow every request.
    [
      'rule http match',
      rule({ action: 'Allow', protocol: 'TCP', http: { methods: ['GET'] } }),
      'spec.ingress[0].http',
      '{"methods":["GET"]}',
      'Tortie has no L7 (HTTP) enforcement',
    ],
    [
      'profile rule http match',
      res('Profile', 'pr1', { ingress: [{ action: 'Allow', http: { paths: [{ prefix: '/api' }] } }] }),
      'spec.ingress[0].http',
      '{"paths":[{"prefix":"/api"}]}',
      'Tortie has no L7 (HTTP) enforcement',
    ],
    ['FelixConfiguration wireguardEnabled', res('FelixConfiguration', 'default', { wireguardEnabled: true }), 'spec.wireguardEnabled', 'true', 'this kernel has no WireGuard'],
    ['FelixConfiguration wireguardEnabledV6', res('FelixConfiguration', 'node.n1', { wireguardEnabledV6: true }), 'spec.wireguardEnabledV6', 'true', 'not supported by Tortie'],
    ['FelixConfiguration bpfEnabled', res('FelixConfiguration', 'default', { bpfEnabled: true }), 'spec.bpfEnabled', 'true', 'Tortie has no eBPF dataplane'],
    [
      'FelixConfiguration useInternalDataplaneDriver false',
      res('FelixConfiguration', 'default', { useInternalDataplaneDriver: false, dataplaneDriver: '/usr/bin/other' }),
      'spec.useInternalDataplaneDriver',
      'false',
      'no external dataplane drivers',
    ],
    ['network set net invalid', res('GlobalNetworkSet', 'gns1', { nets: ['1.2.3.4/40'] }), 'spec.nets[0]', '"1.2.3.4/40"'],
    ['tier name with a dot', res('Tier', 'a.b', {}), 'metadata.name', '"a.b"'],
    ['tier bad defaultAction', res('Tier', 'security', { defaultAction: 'Allow' }), 'spec.defaultAction', '"Allow"'],
    ['default tier wrong order', res('Tier', 'default', { order: 5 }), 'spec.order', '5', '1000000'],
    ['BGP listenPort out of range', res('BGPConfiguration', 'default', { listenPort: 70000 }), 'spec.listenPort', '70000', '1–65535'],
    ['BGP log severity', res('BGPConfiguration', 'default', { logSeverityScreen: 'Verbose' }), 'spec.logSeverityScreen', '"Verbose"'],
    ['BGP mesh on a node config', res('BGPConfiguration', 'node.n1', { nodeToNodeMeshEnabled: false }), 'spec.nodeToNodeMeshEnabled', 'false', 'named "default"'],
    ['BGP mesh not a boolean', res('BGPConfiguration', 'default', { nodeToNodeMeshEnabled: 'true' }), 'spec.nodeToNodeMeshEnabled', '"true"'],
    ['BGP community value', res('BGPConfiguration', 'default', { communities: [{ name: 'c1', value: '70000:1' }], prefixAdvertisements: [{ cidr: '10.0.0.0/8', communities: ['c1'] }] }), 'spec.communities[0].value', '"70000:1"'],
    ['BGP peer IP invalid', res('BGPPeer', 'peer1', { peerIP: '10.0.0.300', asNumber: 64512 }), 'spec.peerIP', '"10.0.0.300"'],
    ['BGP peer port invalid', res('BGPPeer', 'peer1', { peerIP: '[fd00::1]:0', asNumber: 64512 }), 'spec.peerIP', '"[fd00::1]:0"'],
    ['BGP peer asNumber zero-ish', res('BGPPeer', 'peer1', { peerIP: '10.0.0.1', asNumber: -5 }), 'spec.asNumber', '-5'],
    ['BGP peer node and nodeSelector', res('BGPPeer', 'peer1', { node: 'n1', nodeSelector: 'all()', peerIP: '10.0.0.1', asNumber: 65000 }), 'spec.nodeSelector', '"all()"', 'cannot both be set'],
    ['BGP peer bad peerSelector', res('BGPPeer', 'peer1', { peerSelector: 'rr ==' }), 'spec.peerSelector', '"rr =="'],
    ['Felix unknown field', res('FelixConfiguration', 'default', { logSeverityScrn: 'Info' }), 'spec.logSeverityScrn', '"Info"', 'did you mean "logSeverityScreen"'],
    ['Felix bool as string', res('FelixConfiguration', 'default', { ipv6Support: 'false' }), 'spec.ipv6Support', '"false"'],
    ['Felix duration', res('FelixConfiguration', 'default', { iptablesRefreshInterval: 90 }), 'spec.iptablesRefreshInterval', '90'],
    ['Felix enum', res('FelixConfiguration', 'default', { defaultEndpointToHostAction: 'Permit' }), 'spec.defaultEndpointToHostAction', '"Permit"'],
    ['Felix port range', res('FelixConfiguration', 'default', { healthPort: 99999 }), 'spec.healthPort', '99999'],
    ['Felix failsafe protocol', res('FelixConfiguration', 'default', { failsafeInboundHostPorts: [{ protocol: 'icmp', port: 22 }] }), 'spec.failsafeInboundHostPorts[0].protocol', '"icmp"'],
    ['ClusterInformation name', res('ClusterInformation', 'cluster', {}), 'metadata.name', '"cluster"'],
    ['KubeControllers healthChecks', res('KubeControllersConfiguration', 'default', { healthChecks: 'On' }), 'spec.healthChecks', '"On"'],
    ['KubeControllers unknown controller', res('KubeControllersConfiguration', 'default', { controllers: { nodes: {} } }), 'spec.controllers.nodes', '{}', 'did you mean "node"'],
    ['spec not an object', { apiVersion: V3, kind: 'Profile', metadata: { name: 'x' }, spec: ['a'] }, 'spec', '["a"]', 'must be an object'],
    ['unknown top-level field', { ...res('Profile', 'x', {}), specs: {} }, 'specs', '{}', 'did you mean "spec"'],
  ];
  for (const [title, r, path, value, also] of cases) {
    it(title, () => {
      refused(r, path, value, { also });
    });
  }
  it('has at least 25 distinct cases', () => assert.ok(cases.length >= 25));

  it('names the resource and reports every problem at once', () => {
    const e = refused(pool({ blockSize: 33, natOutgoing: 'yes', bogus: 1 }), 'spec.blockSize', '33');
    assert.ok(e.message.startsWith('IPPool "p1": 3 problems: '), e.message);
    assert.deepEqual(e.issues.map((i) => i.path).sort(), ['spec.blockSize', 'spec.bogus', 'spec.natOutgoing']);
    assert.equal(e.kind, 'IPPool');
    assert.equal(e.resourceName, 'p1');
  });

  it('gives the exact message for the canonical example', () => {
    assert.throws(() => validateResource(pool({ blockSize: 33 })), {
      name: 'ValidationError',
      message: 'IPPool "p1": spec.blockSize: 33 is out of range (IPv4 block size must be 20–32)',
    });
  });

  it('names namespaced resources by namespace/name', () => {
    const e = refused(res('NetworkPolicy', 'np1', { order: 'x' }, { namespace: 'prod' }), 'spec.order', '"x"');
    assert.ok(e.message.startsWith('NetworkPolicy "prod/np1": '), e.message);
  });

  it('refuses things that are not resources', () => {
    for (const v of [null, 'IPPool', 42, ['a']]) assert.throws(() => validateResource(v), ValidationError);
    assert.throws(() => validateResource({ apiVersion: V3, metadata: { name: 'x' } }), /kind: required field is missing/);
  });
});

describe('defaults and canonical forms per kind', () => {
  it('namespaced kinds default to namespace "default"; server fields pass through', () => {
    const out = validateResource(
      res('NetworkSet', 'ns1', { nets: ['10.0.0.5/24', '192.168.1.1', 'FD00:0::1/64'] }, { uid: 'u-1', resourceVersion: '42', creationTimestamp: '2024-01-01T00:00:00Z' }),
    );
    assert.equal(out.metadata.namespace, 'default');
    assert.equal(out.metadata.uid, 'u-1');
    assert.equal(out.metadata.resourceVersion, '42');
    assert.equal(out.metadata.creationTimestamp, '2024-01-01T00:00:00Z');
    assert.deepEqual(out.spec!.nets, ['10.0.0.0/24', '192.168.1.1/32', 'fd00::/64']);
  });

  it('NetworkPolicy: tier, types and tier label defaulted; ports and protocols canonical', () => {
    const out = validateResource(
      res(
        'NetworkPolicy',
        'allow-web',
        {
          selector: 'app == "web"',
          ingress: [
            { action: 'Allow', protocol: '6', destination: { ports: ['80', 443, '8000:8080', '9000:9000', 'http'] } },
            { action: 'Allow', protocol: 'UDP', source: { nets: ['10.0.0.1'], namespaceSelector: 'global()' } },
          ],
        },
        { namespace: 'web' },
      ),
    );
    const spec = out.spec as Record<string, any>;
    assert.equal(spec.tier, 'default');
    assert.deepEqual(spec.types, ['Ingress']);
    assert.equal(out.metadata.labels!['projectcalico.org/tier'], 'default');
    assert.equal(spec.ingress[0].protocol, 6);
    assert.deepEqual(spec.ingress[0].destination.ports, [80, 443, '8000:8080', 9000, 'http']);
    assert.deepEqual(spec.ingress[1].source.nets, ['10.0.0.1/32']);
    assert.equal(spec.ingress[1].source.namespaceSelector, 'global()');
  });

  it('policy types follow the rules present', () => {
    const types = (spec: Record<string, unknown>) => validateResource(res('GlobalNetworkPolicy', 'g', spec)).spec!.types;
    assert.deepEqual(types({}), ['Ingress']);
    assert.deepEqual(types({ egress: [{ action: 'Allow' }] }), ['Egress']);
    assert.deepEqual(types({ ingress: [{ action: 'Deny' }], egress: [{ action: 'Allow' }] }), ['Ingress', 'Egress']);
    assert.deepEqual(types({ types: ['Egress'] }), ['Egress']);
  });

  it('GlobalNetworkPolicy host endpoint flags false and a named port without protocol are accepted', () => {
    const out = validateResource(
      res('GlobalNetworkPolicy', 'security.host-fw', {
        tier: 'security',
        order: 10.5,
        selector: 'has(host)',
        doNotTrack: false,
        preDNAT: false,
        applyOnForward: false,
        ingress: [{ action: 'Allow', destination: { ports: ['ssh'] } }],
      }),
    );
    assert.equal(out.spec!.tier, 'security');
    assert.equal(out.spec!.order, 10.5);
    // false is Calico's default (omitempty): dropped.
    assert.equal(out.spec!.doNotTrack, undefined);
    assert.equal(out.spec!.applyOnForward, undefined);
  });

  it('FelixConfiguration: wireguard/bpf switched off and WireGuard-only settings are accepted', () => {
    const out = validateResource(res('FelixConfiguration', 'default', { wireguardEnabled: false, bpfEnabled: false, wireguardMTU: 1400, useInternalDataplaneDriver: true }));
    assert.deepEqual(out.spec, { bpfEnabled: false, useInternalDataplaneDriver: true, wireguardEnabled: false, wireguardMTU: 1400 });
  });

  it('WorkloadEndpoint: name derived from the spec, Calico labels added', () => {
    const out = validateResource({
      apiVersion: V3,
      kind: 'WorkloadEndpoint',
      metadata: { namespace: 'kube-system', labels: { app: 'dns' } },
      spec: {
        node: 'playcekube-worker01',
        orchestrator: 'k8s',
        pod: 'coredns-5d78c9869d-abcde',
        endpoint: 'eth0',
        interfaceName: 'cali382bc0c1cbe',
        ipNetworks: ['10.233.106.12'],
        profiles: ['kns.kube-system', 'ksa.kube-system.coredns'],
        mac: 'EE-EE-EE-EE-EE-EE',
        ports: [{ name: 'dns', protocol: 'UDP', port: 53 }],
      },
    });
    assert.equal(out.metadata.name, 'playcekube--worker01-k8s-coredns--5d78c9869d--abcde-eth0');
    assert.deepEqual(out.metadata.labels, {
      app: 'dns',
      'projectcalico.org/namespace': 'kube-system',
      'projectcalico.org/orchestrator': 'k8s',
    });
    assert.deepEqual(out.spec!.ipNetworks, ['10.233.106.12/32']);
    assert.equal(out.spec!.mac, 'ee:ee:ee:ee:ee:ee');
    assert.deepEqual(workloadEndpointName({ node: 'kind-worker', orchestrator: 'k8s', pod: 'nginx-abc', endpoint: 'eth0' }), {
      name: 'kind--worker-k8s-nginx--abc-eth0',
    });
    assert.deepEqual(workloadEndpointName({ node: 'n', orchestrator: 'cni', containerID: 'abc', endpoint: 'eth0' }), { name: 'n-cni-abc-eth0' });
  });

  it('Node keeps interface addresses with their prefix and parses dotted AS numbers', () => {
    const out = validateResource(
      res('Node', 'playcekube-master01', {
        bgp: { ipv4Address: '10.0.0.11/16', asNumber: '1.10', ipv4IPIPTunnelAddr: '10.233.77.0' },
        ipv4VXLANTunnelAddr: '10.233.77.1',
        orchRefs: [{ nodeName: 'playcekube-master01', orchestrator: 'k8s' }],
      }),
    );
    assert.deepEqual(out.spec!.bgp, { asNumber: 65546, ipv4Address: '10.0.0.11/16', ipv4IPIPTunnelAddr: '10.233.77.0' });
  });

  it('IPAMConfiguration defaults', () => {
    assert.deepEqual(validateResource(res('IPAMConfiguration', 'default', {})).spec, {
      autoAllocateBlocks: true,
      maxBlocksPerHost: 0,
      strictAffinity: false,
    });
    assert.deepEqual(validateResource(res('IPAMConfiguration', 'default', { strictAffinity: true, maxBlocksPerHost: 4 })).spec, {
      autoAllocateBlocks: true,
      maxBlocksPerHost: 4,
      strictAffinity: true,
    });
  });

  it('BGPConfiguration fills nothing but normalises; effective values come from the helper', () => {
    const out = validateResource(res('BGPConfiguration', 'default', { logSeverityScreen: 'info', asNumber: '64513' }));
    assert.deepEqual(out.spec, { asNumber: 64513, logSeverityScreen: 'Info' });
    assert.deepEqual(effectiveBGPConfiguration(undefined), { asNumber: 64512, nodeToNodeMeshEnabled: true, listenPort: 179, logSeverityScreen: 'Info' });
    assert.equal(effectiveBGPConfiguration(out.spec).asNumber, 64513);
    assert.doesNotThrow(() => validateResource(res('BGPConfiguration', 'node.n1', { logSeverityScreen: 'Debug', listenPort: 1179 })));
  });

  it('BGPPeer addresses and selectors', () => {
    assert.equal(validateResource(res('BGPPeer', 'a', { peerIP: '[FD00::0001]:1179', asNumber: 65001 })).spec!.peerIP, '[fd00::1]:1179');
    assert.equal(validateResource(res('BGPPeer', 'b', { peerIP: '10.0.0.1:179', asNumber: 65001, node: 'n1' })).spec!.peerIP, '10.0.0.1:179');
    assert.doesNotThrow(() => validateResource(res('BGPPeer', 'rr', { nodeSelector: '!has(rr)', peerSelector: 'has(rr)' })));
  });

  it('Tier defaults and built-in tiers', () => {
    assert.deepEqual(validateResource(res('Tier', 'security', { order: 100 })).spec, { defaultAction: 'Deny', order: 100 });
    assert.deepEqual(validateResource(res('Tier', 'default', {})).spec, { defaultAction: 'Deny', order: 1000000 });
    assert.deepEqual(validateResource(res('Tier', 'kube-admin', {})).spec, { defaultAction: 'Pass', order: 1000 });
  });

  it('FelixConfiguration accepts known fields with the right types', () => {
    const out = validateResource(
      res('FelixConfiguration', 'default', {
        logSeverityScreen: 'info',
        ipipEnabled: true,
        reportingInterval: '0s',
        healthEnabled: true,
        healthPort: 9099,
        iptablesBackend: 'auto',
        failsafeInboundHostPorts: [{ protocol: 'tcp', port: 22 }, { protocol: 'UDP', port: 68 }],
        kubeNodePortRanges: ['30000:32767'],
        routeTableRange: { min: 1, max: 250 },
        bpfLogFilters: { all: 'tcp' },
      }),
    );
    assert.equal(out.spec!.logSeverityScreen, 'info');
    assert.deepEqual(out.spec!.failsafeInboundHostPorts, [
      { port: 22, protocol: 'TCP' },
      { port: 68, protocol: 'UDP' },
    ]);
    assert.throws(() => validateResource(res('FelixConfiguration', 'node.n1', { nodeSelector: 'all()' })), /spec\.nodeSelector: "all\(\)" may not be set/);
  });

  it('KubeControllersConfiguration and ClusterInformation', () => {
    assert.deepEqual(validateResource(res('KubeControllersConfiguration', 'default', {})).spec, { controllers: {}, healthChecks: 'Enabled' });
    const kcc = validateResource(
      res('KubeControllersConfiguration', 'default', {
        logSeverityScreen: 'Info',
        controllers: { node: { reconcilerPeriod: '5m', syncLabels: 'Enabled' }, policy: { reconcilerPeriod: '5m' } },
      }),
    );
    assert.equal((kcc.spec!.controllers as any).node.reconcilerPeriod, '5m');
    assert.deepEqual(validateResource(res('ClusterInformation', 'default', { clusterType: 'kubespray,bgp,kubeadm,kdd,k8s', datastoreReady: true })).spec, {
      clusterType: 'kubespray,bgp,kubeadm,kdd,k8s',
      datastoreReady: true,
    });
  });

  it('HostEndpoint refused even when well-formed (one issue), Profile accepted', () => {
    assert.throws(
      () => validateResource(res('HostEndpoint', 'n1-eth0', { node: 'n1', interfaceName: '*', expectedIPs: ['10.0.0.11'], ports: [{ name: 'ssh', protocol: 'TCP', port: 22 }] })),
      (e: unknown) => {
        assert.ok(e instanceof ValidationError);
        assert.deepEqual(e.issues.map((i) => i.path), ['kind']);
        assert.equal(
          e.message,
          'HostEndpoint "n1-eth0": kind: "HostEndpoint" is not supported: host endpoint policy is not enforced by Tortie (it polices pods only), so a HostEndpoint would protect nothing',
        );
        return true;
      },
    );
    const pro = validateResource(res('Profile', 'kns.kube-system', { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }], labelsToApply: { 'pcns.projectcalico.org/name': 'kube-system' } }));
    assert.deepEqual(pro.spec!.ingress, [{ action: 'Allow' }]);
  });

  it('validateResources returns per-item results', () => {
    const out = validateResources([seedPool, { kind: 'Nope' }]);
    assert.ok(out[0].resource);
    assert.ok(out[1].error instanceof ValidationError);
  });

  it('does not modify its input', () => {
    const input = JSON.parse(JSON.stringify(seedPool));
    validateResource(input);
    assert.deepEqual(input, seedPool);
  });
});
