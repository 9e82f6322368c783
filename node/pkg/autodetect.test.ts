import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AutodetectError,
  addressWithPrefix,
  autodetectIPv4,
  computePodMTU,
  isGlobalUnicastV4,
  networkOf,
  parseIpAddrJson,
  parseRouteGetJson,
  readInterfaces,
  selectIPv4,
} from './autodetect.js';
import { DEFAULTS, parseAutodetectionMethod } from './config.js';

// Shaped like `ip -j addr show` on a node with docker, a calico veth, an IPIP tunnel and two NICs.
const link = (ifindex: number, ifname: string, mtu: number, operstate: string, addrs: Array<[string, string, number]>) => ({
  ifindex,
  ifname,
  flags: ['UP'],
  mtu,
  operstate,
  link_type: 'ether',
  addr_info: addrs.map(([family, local, prefixlen]) => ({ family, local, prefixlen, scope: 'global', label: ifname })),
});

const HOST = JSON.stringify([
  link(1, 'lo', 65536, 'UNKNOWN', [
    ['inet', '127.0.0.1', 8],
    ['inet6', '::1', 128],
  ]),
  link(2, 'eth0', 1500, 'UP', [
    ['inet', '10.0.0.21', 16],
    ['inet6', 'fe80::1', 64],
  ]),
  link(3, 'eth1', 9000, 'UP', [
    ['inet', '169.254.10.1', 16],
    ['inet', '10.1.1.21', 16],
  ]),
  link(4, 'docker0', 1500, 'DOWN', [['inet', '172.17.0.1', 16]]),
  link(5, 'tunl0', 1480, 'UNKNOWN', [['inet', '10.233.77.0', 32]]),
  link(6, 'cali382bc0c1cbe', 1480, 'UP', []),
  link(7, 'vxlan.calico', 1450, 'UNKNOWN', [['inet', '10.233.77.1', 32]]),
  { ifindex: 8, ifname: 'weird' }, // no addr_info at all
]);

const ifaces = parseIpAddrJson(HOST);
const method = (s: string) => parseAutodetectionMethod(s);

test('parses ip -j addr output', () => {
  assert.equal(ifaces.length, 8);
  assert.deepEqual(ifaces[1], {
    index: 2,
    name: 'eth0',
    mtu: 1500,
    operUp: true,
    addresses: [
      { family: 4, address: '10.0.0.21', prefixLen: 16 },
      { family: 6, address: 'fe80::1', prefixLen: 64 },
    ],
  });
  assert.throws(() => parseIpAddrJson('not json'), AutodetectError);
  assert.throws(() => parseIpAddrJson('{}'), /did not print a list/);
});

test('first-found walks interfaces from the highest index and skips Calico\'s exclude list', () => {
  // docker0, tunl0, cali*, vxlan.calico, lo excluded; eth1 (index 3) comes before eth0; its
  // link-local address is skipped.
  assert.deepEqual(selectIPv4(method('first-found'), ifaces), {
    iface: 'eth1',
    address: '10.1.1.21',
    prefixLen: 16,
    cidr: '10.1.1.21/16',
  });
});

test('skip-interface adds to the exclude list', () => {
  assert.equal(selectIPv4(method('skip-interface=eth1'), ifaces).cidr, '10.0.0.21/16');
  assert.throws(() => selectIPv4(method('skip-interface=eth.*'), ifaces), /no valid IPv4 address found .*skip-interface=eth\.\*/);
});

test('interface= considers only matching names (and nothing is excluded)', () => {
  assert.equal(selectIPv4(method('interface=eth0'), ifaces).cidr, '10.0.0.21/16');
  assert.equal(selectIPv4(method('interface=docker.*'), ifaces).cidr, '172.17.0.1/16');
  // Unanchored like Go's MatchString: "th0" matches eth0.
  assert.equal(selectIPv4(method('interface=th0'), ifaces).iface, 'eth0');
  // Several regexes: the walk order decides, not the list order.
  assert.equal(selectIPv4(method('interface=eth0,eth1'), ifaces).iface, 'eth1');
  assert.throws(() => selectIPv4(method('interface=ens.*'), ifaces), /no valid IPv4 address found/);
});

test('cidr= picks the first address inside one of the CIDRs', () => {
  assert.equal(selectIPv4(method('cidr=10.0.0.0/16'), ifaces).cidr, '10.0.0.21/16');
  assert.equal(selectIPv4(method('cidr=192.168.0.0/16,10.0.0.0/15'), ifaces).cidr, '10.1.1.21/16');
  // No exclusions: the tunnel address matches too.
  assert.equal(selectIPv4(method('cidr=10.233.0.0/16'), ifaces).iface, 'vxlan.calico');
  assert.throws(() => selectIPv4(method('cidr=192.168.0.0/16'), ifaces), /cidr=192\.168\.0\.0\/16/);
});

test('can-reach uses the route source address and the matching interface prefix', async () => {
  const routeJson = JSON.stringify([{ dst: '10.0.0.11', dev: 'eth0', prefsrc: '10.0.0.21', flags: [], uid: 0, cache: [] }]);
  assert.equal(parseRouteGetJson(routeJson), '10.0.0.21');
  assert.equal(parseRouteGetJson('[{"dst":"1.2.3.4","dev":"lo","flags":[]}]'), undefined);
  assert.equal(selectIPv4(method('can-reach=10.0.0.11'), ifaces, '10.0.0.21').cidr, '10.0.0.21/16');
  assert.throws(() => selectIPv4(method('can-reach=10.0.0.11'), ifaces, '10.9.9.9'), /does not match any address/);
  assert.throws(() => selectIPv4(method('can-reach=10.0.0.11'), ifaces, undefined), /no source address/);

  const asked: string[] = [];
  const d = await autodetectIPv4(method('can-reach=k8s-api.example'), {
    interfaces: async () => ifaces,
    resolveHost: async (h) => {
      asked.push(h);
      return '10.1.0.1';
    },
    routeSource: async (dest) => {
      asked.push(dest);
      return '10.1.1.21';
    },
  });
  assert.deepEqual(asked, ['k8s-api.example', '10.1.0.1']);
  assert.equal(d.cidr, '10.1.1.21/16');
});

test('nothing usable', () => {
  const only = parseIpAddrJson(JSON.stringify([link(1, 'lo', 65536, 'UNKNOWN', [['inet', '127.0.0.1', 8]])]));
  assert.throws(() => selectIPv4(method('first-found'), only), /no valid IPv4 address found on the host interfaces with IP_AUTODETECTION_METHOD=first-found \(interfaces: lo\)/);
});

test('global unicast, explicit addresses, networks', () => {
  for (const a of ['127.0.0.1', '169.254.1.1', '224.0.0.1', '0.0.0.0', '255.255.255.255', 'fd00::1', 'x']) {
    assert.equal(isGlobalUnicastV4(a), false, a);
  }
  for (const a of ['10.0.0.1', '192.168.1.1', '8.8.8.8', '100.64.0.1']) assert.equal(isGlobalUnicastV4(a), true, a);
  assert.equal(addressWithPrefix('10.0.0.21', undefined, ifaces), '10.0.0.21/16');
  assert.equal(addressWithPrefix('10.9.9.9', undefined, ifaces), '10.9.9.9/32');
  assert.equal(addressWithPrefix('10.9.9.9', 24, ifaces), '10.9.9.9/24');
  assert.equal(networkOf('10.0.0.21/16'), '10.0.0.0/16');
});

test('pod MTU as Felix computes it', () => {
  const base = { ifacePattern: DEFAULTS.mtuIfacePattern, ipipEnabled: false, vxlanEnabled: false };
  // eth0 1500 and eth1 9000 match and are up: host MTU 1500.
  assert.deepEqual(computePodMTU(ifaces, base), { hostMTU: 1500, hostInterfaces: ['eth0'], podMTU: 1500 });
  assert.equal(computePodMTU(ifaces, { ...base, ipipEnabled: true }).podMTU, 1480);
  assert.equal(computePodMTU(ifaces, { ...base, vxlanEnabled: true }).podMTU, 1450);
  assert.equal(computePodMTU(ifaces, { ...base, ipipEnabled: true, vxlanEnabled: true }).podMTU, 1450);
  assert.equal(computePodMTU(ifaces, { ...base, ipipEnabled: true, ipipMTU: 1400 }).podMTU, 1400);
  // Nothing matches: Felix's fallback 1460.
  assert.deepEqual(computePodMTU(ifaces, { ...base, ifacePattern: '^ens' }), { hostMTU: 1460, hostInterfaces: [], podMTU: 1460 });
  // Down interfaces do not count.
  const down = parseIpAddrJson(JSON.stringify([link(2, 'eth0', 1400, 'DOWN', []), link(3, 'eth1', 9000, 'UP', [])]));
  assert.equal(computePodMTU(down, base).hostMTU, 9000);
});

test('readInterfaces runs ip with an argument array', async () => {
  const calls: string[][] = [];
  const list = await readInterfaces(async (args) => {
    calls.push(args);
    return HOST;
  });
  assert.deepEqual(calls, [['-j', 'addr', 'show']]);
  assert.equal(list.length, 8);
});

test('reads this netns for real (read-only)', async () => {
  const list = await readInterfaces();
  assert.ok(list.some((i) => i.name === 'lo'), 'lo is always there');
});
