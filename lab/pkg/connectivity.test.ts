import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pingError, scenarioPolicies } from './connectivity.js';
import { parseTcpdump } from './trace-live.js';

describe('lab connectivity driver and live trace: parsing', () => {
  it("keeps ping's own reason, else says no reply in time", () => {
    assert.equal(pingError('PING x\nFrom 10.0.0.12 icmp_seq=1 Frag needed and DF set (mtu = 1400)\n\n--- x ---', 2000), 'From 10.0.0.12 icmp_seq=1 Frag needed and DF set (mtu = 1400)');
    assert.equal(pingError('/usr/bin/ping: local error: message too long, mtu=1400\n', 2000), '/usr/bin/ping: local error: message too long, mtu=1400');
    assert.equal(pingError('PING x\n\n--- x ping statistics ---\n1 packets transmitted, 0 received, 100% packet loss', 2000), 'no echo reply within 2s');
  });

  it('the scenario: nothing, deny, deny + allow from role=client on the probe port', () => {
    assert.deepEqual(scenarioPolicies('none', 8080), []);
    const [deny] = scenarioPolicies('deny', 8080) as [{ spec: { types: string[]; ingress?: unknown } }];
    assert.deepEqual(deny.spec.types, ['Ingress']);
    assert.equal(deny.spec.ingress, undefined, 'no rule: default deny');
    const allow = scenarioPolicies('allow', 8080)[1] as { spec: { ingress: { source: { selector: string }; destination: { ports: number[] } }[] } };
    assert.equal(allow.spec.ingress[0]!.source.selector, "role == 'client'");
    assert.deepEqual(allow.spec.ingress[0]!.destination.ports, [8080]);
  });

  it('tcpdump -i any lines → interfaces and directions, once each', () => {
    const out = [
      '22:07:45.933849 eth0  In  IP 10.233.116.0 > 10.233.109.0: ICMP echo request, id 3285, seq 1, length 64',
      '22:07:45.933935 califf6fc35a693 Out IP 10.233.116.0 > 10.233.109.0: ICMP echo request, id 3285, seq 1, length 64',
      '22:07:45.933936 califf6fc35a693 Out IP 10.233.116.0 > 10.233.109.0: ICMP echo request, id 3285, seq 2, length 64',
      '22:07:45.933937 eth0  M   IP 10.233.116.0 > 10.233.109.0: something multicast',
      'tcpdump: listening on any',
    ].join('\n');
    assert.deepEqual(parseTcpdump('node2', out), [
      { node: 'node2', iface: 'eth0', dir: 'in' },
      { node: 'node2', iface: 'califf6fc35a693', dir: 'out' },
    ]);
  });
});
