// Pure tests of the VXLAN device plan and the VTEP MAC (no root needed). The real device is
// exercised in overlay.test.ts.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeMac, planVxlanDevice, resolveVxlanSpec, vtepMacForNode, type AddrLinkJson } from './vxlan.js';

describe('vtepMacForNode', () => {
  it('is 0x66 + the first 5 bytes of SHA-1(node name) (values from sha1sum)', () => {
    // echo -n node1 | sha1sum → f937c37e94…; node2 → 2dbf44a68b…; node1-v6 → 0f35f260df…
    assert.equal(vtepMacForNode('node1'), '66:f9:37:c3:7e:94');
    assert.equal(vtepMacForNode('node2'), '66:2d:bf:44:a6:8b');
    assert.equal(vtepMacForNode('playcekube-worker01'), '66:21:81:d9:98:87');
    assert.equal(vtepMacForNode('node1', 6), '66:0f:35:f2:60:df');
  });
  it('is a locally administered unicast address', () => {
    for (const n of ['a', 'node1', 'x'.repeat(253)]) {
      const first = parseInt(vtepMacForNode(n).slice(0, 2), 16);
      assert.equal(first & 1, 0, 'unicast');
      assert.equal(first & 2, 2, 'locally administered');
    }
  });
  it('normalizeMac', () => {
    assert.equal(normalizeMac('66:AA:bb:CC:dd:EE'), '66:aa:bb:cc:dd:ee');
    assert.equal(normalizeMac('66-aa-bb-cc-dd-ee'), '66:aa:bb:cc:dd:ee');
    assert.equal(normalizeMac('01:00:5e:00:00:01'), null, 'multicast');
    assert.equal(normalizeMac('ff:ff:ff:ff:ff:ff'), null);
    assert.equal(normalizeMac('00:00:00:00:00:00'), null);
    assert.equal(normalizeMac('66:aa:bb:cc:dd'), null);
  });
});

function eth0(mtu = 1500, addr = '10.0.0.11'): AddrLinkJson {
  return { ifindex: 2, ifname: 'eth0', flags: ['UP'], mtu, addr_info: [{ family: 'inet', local: addr, prefixlen: 24 }] };
}

function vx(over: Partial<AddrLinkJson> = {}, data: Record<string, unknown> = {}): AddrLinkJson {
  return {
    ifindex: 4,
    ifname: 'vxlan.calico',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    mtu: 1450,
    address: '66:f9:37:c3:7e:94',
    linkinfo: { info_kind: 'vxlan', info_data: { id: 4096, local: '10.0.0.11', link: 'eth0', port: 4789, learning: false, ...data } },
    addr_info: [
      { family: 'inet', local: '10.233.64.0', prefixlen: 32 },
      { family: 'inet6', local: 'fe80::64f9:37ff:fec3:7e94', prefixlen: 64 },
    ],
    ...over,
  };
}

const spec = { localAddress: '10.0.0.11', tunnelAddress: '10.233.64.0', nodeName: 'node1' };

describe('planVxlanDevice', () => {
  it('absent → create with Calico’s parameters, MTU = parent − 50', () => {
    const p = planVxlanDevice(spec, [eth0()]);
    assert.equal(p.create, true);
    assert.equal(p.mtu, 1450);
    assert.equal(p.parent, 'eth0');
    assert.deepEqual(p.commands, [
      'link add vxlan.calico address 66:f9:37:c3:7e:94 mtu 1450 type vxlan id 4096 local 10.0.0.11 dev eth0 dstport 4789 nolearning'.split(' '),
      'addr add 10.233.64.0/32 dev vxlan.calico'.split(' '),
      'link set dev vxlan.calico up'.split(' '),
    ]);
    assert.equal(planVxlanDevice(spec, [eth0(9000)]).mtu, 8950);
    assert.equal(planVxlanDevice({ ...spec, mtu: 1400 }, [eth0(9000)]).mtu, 1400);
    assert.equal(planVxlanDevice({ ...spec, underlayMtu: 9001 }, [eth0(1500)]).mtu, 8951);
    assert.equal(planVxlanDevice({ ...spec, underlayMtu: 9001, mtu: 1400 }, [eth0(1500)]).mtu, 1400);
    assert.throws(() => planVxlanDevice({ ...spec, underlayMtu: 100 }, [eth0()]), /invalid underlay MTU/);
  });
  it('right → nothing to do (idempotent)', () => {
    const p = planVxlanDevice(spec, [eth0(), vx()]);
    assert.deepEqual(p.commands, []);
    assert.deepEqual(p.actions, []);
    assert.equal(p.create || p.recreate, false);
  });
  it('wrong VNI / port / local / parent / MAC / learning / kind → delete and create again', () => {
    const cases: [AddrLinkJson, RegExp][] = [
      [vx({}, { id: 42 }), /vni 42, want 4096/],
      [vx({}, { port: 8472 }), /port 8472, want 4789/],
      [vx({}, { local: '10.0.0.99' }), /local 10\.0\.0\.99, want 10\.0\.0\.11/],
      [vx({}, { link: 'eth1' }), /parent eth1, want eth0/],
      [vx({}, { learning: true }), /learning on/],
      [vx({ address: '66:00:00:00:00:01' }), /mac 66:00:00:00:00:01, want 66:f9:37:c3:7e:94/],
      [vx({ linkinfo: { info_kind: 'veth' } }), /kind veth, want vxlan/],
    ];
    for (const [link, re] of cases) {
      const p = planVxlanDevice(spec, [eth0(), link]);
      assert.equal(p.recreate, true, String(re));
      assert.match(p.actions.join('; '), re);
      assert.deepEqual(p.commands[0], ['link', 'del', 'dev', 'vxlan.calico']);
      assert.equal(p.commands[1][1], 'add');
    }
  });
  it('repairs in place: MTU, missing or stray addresses, down', () => {
    const p = planVxlanDevice(spec, [
      eth0(),
      vx({ mtu: 1500, flags: ['BROADCAST', 'MULTICAST'], addr_info: [{ family: 'inet', local: '10.233.64.1', prefixlen: 32 }] }),
    ]);
    assert.equal(p.recreate, false);
    assert.deepEqual(p.commands, [
      ['link', 'set', 'dev', 'vxlan.calico', 'mtu', '1450'],
      ['addr', 'del', '10.233.64.1/32', 'dev', 'vxlan.calico'],
      ['addr', 'add', '10.233.64.0/32', 'dev', 'vxlan.calico'],
      ['link', 'set', 'dev', 'vxlan.calico', 'up'],
    ]);
    // The tunnel address with another prefix is replaced by the /32.
    const q = planVxlanDevice(spec, [eth0(), vx({ addr_info: [{ family: 'inet', local: '10.233.64.0', prefixlen: 26 }] })]);
    assert.deepEqual(q.commands, [
      ['addr', 'del', '10.233.64.0/26', 'dev', 'vxlan.calico'],
      ['addr', 'add', '10.233.64.0/32', 'dev', 'vxlan.calico'],
    ]);
  });
  it('explicit parent, given MAC, other VNI/port', () => {
    const links = [eth0(), { ifindex: 3, ifname: 'eth1', mtu: 9000, addr_info: [] }];
    const p = planVxlanDevice({ ...spec, parentIfName: 'eth1', mac: '66:AA:BB:CC:DD:EE', vni: 7, port: 8472 }, links);
    assert.deepEqual(p.commands[0], 'link add vxlan.calico address 66:aa:bb:cc:dd:ee mtu 8950 type vxlan id 7 local 10.0.0.11 dev eth1 dstport 8472 nolearning'.split(' '));
  });
  it('errors: no parent, bad spec', () => {
    assert.throws(() => planVxlanDevice(spec, []), /no device has the local address 10\.0\.0\.11/);
    assert.throws(() => planVxlanDevice({ ...spec, parentIfName: 'eth9' }, [eth0()]), /parent device eth9 not found/);
    assert.throws(() => resolveVxlanSpec({ localAddress: '10.0.0.11', tunnelAddress: '10.233.64.0' }), /mac or nodeName/);
    assert.throws(() => resolveVxlanSpec({ ...spec, vni: 0 }), /invalid VNI/);
    assert.throws(() => resolveVxlanSpec({ ...spec, vni: 1 << 24 }), /invalid VNI/);
    assert.throws(() => resolveVxlanSpec({ ...spec, localAddress: 'fd00::1' }), /invalid local/);
    assert.throws(() => resolveVxlanSpec({ ...spec, mac: '01:00:5e:00:00:01' }), /invalid VTEP MAC/);
    assert.throws(() => resolveVxlanSpec({ ...spec, name: 'a/b' }), /invalid device name/);
    assert.throws(() => planVxlanDevice(spec, [eth0(100)]), /too small/);
  });
});
