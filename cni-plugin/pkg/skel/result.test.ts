import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CniError } from './errors.js';
import { formatResult, parseResult, prevResultOf, type InternalResult } from './result.js';

const SAMPLE: InternalResult = {
  interfaces: [
    { name: 'cali12345abcde', mac: 'ee:ee:ee:ee:ee:ee', mtu: 1450 },
    { name: 'eth0', mac: '3a:cf:00:11:22:33', mtu: 1450, sandbox: '/run/netns/ctr1', socketPath: '/run/x.sock', pciID: '0000:00:01.0' },
  ],
  ips: [
    { address: '10.99.5.2/32', gateway: '169.254.1.1', interface: 1 },
    { address: 'fd00:1::2/128', interface: 1 },
  ],
  routes: [
    { dst: '0.0.0.0/0', gw: '169.254.1.1', mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0 },
    { dst: '::/0' },
  ],
  dns: { nameservers: ['10.96.0.10'], domain: 'cluster.local', search: ['default.svc.cluster.local'], options: ['ndots:5'] },
};

const GOLDEN_031 =
  '{"cniVersion":"0.3.1",' +
  '"interfaces":[{"name":"cali12345abcde","mac":"ee:ee:ee:ee:ee:ee"},{"name":"eth0","mac":"3a:cf:00:11:22:33","sandbox":"/run/netns/ctr1"}],' +
  '"ips":[{"version":"4","interface":1,"address":"10.99.5.2/32","gateway":"169.254.1.1"},{"version":"6","interface":1,"address":"fd00:1::2/128"}],' +
  '"routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1"},{"dst":"::/0"}],' +
  '"dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["default.svc.cluster.local"],"options":["ndots:5"]}}';

const GOLDEN_100 =
  '{"cniVersion":"1.0.0",' +
  '"interfaces":[{"name":"cali12345abcde","mac":"ee:ee:ee:ee:ee:ee"},{"name":"eth0","mac":"3a:cf:00:11:22:33","sandbox":"/run/netns/ctr1"}],' +
  '"ips":[{"interface":1,"address":"10.99.5.2/32","gateway":"169.254.1.1"},{"interface":1,"address":"fd00:1::2/128"}],' +
  '"routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1"},{"dst":"::/0"}],' +
  '"dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["default.svc.cluster.local"],"options":["ndots:5"]}}';

const GOLDEN_110 =
  '{"cniVersion":"1.1.0",' +
  '"interfaces":[{"name":"cali12345abcde","mac":"ee:ee:ee:ee:ee:ee","mtu":1450},' +
  '{"name":"eth0","mac":"3a:cf:00:11:22:33","mtu":1450,"sandbox":"/run/netns/ctr1","socketPath":"/run/x.sock","pciID":"0000:00:01.0"}],' +
  '"ips":[{"interface":1,"address":"10.99.5.2/32","gateway":"169.254.1.1"},{"interface":1,"address":"fd00:1::2/128"}],' +
  '"routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1","mtu":1400,"advmss":1360,"priority":10,"table":100,"scope":0},{"dst":"::/0"}],' +
  '"dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["default.svc.cluster.local"],"options":["ndots:5"]}}';

describe('formatResult', () => {
  it('0.3.1 golden', () => assert.equal(JSON.stringify(formatResult(SAMPLE, '0.3.1')), GOLDEN_031));
  it('0.3.0 and 0.4.0 have the 0.3.1 shape', () => {
    for (const v of ['0.3.0', '0.4.0']) {
      assert.equal(JSON.stringify(formatResult(SAMPLE, v)), GOLDEN_031.replace('"0.3.1"', `"${v}"`));
    }
  });
  it('1.0.0 golden', () => assert.equal(JSON.stringify(formatResult(SAMPLE, '1.0.0')), GOLDEN_100));
  it('1.1.0 golden', () => assert.equal(JSON.stringify(formatResult(SAMPLE, '1.1.0')), GOLDEN_110));

  it('abbreviated (IPAM) results have no interfaces and no ips[].interface', () => {
    assert.equal(
      JSON.stringify(formatResult(SAMPLE, '0.4.0', { abbreviated: true })),
      '{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.99.5.2/32","gateway":"169.254.1.1"},{"version":"6","address":"fd00:1::2/128"}],' +
        '"routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1"},{"dst":"::/0"}],' +
        '"dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["default.svc.cluster.local"],"options":["ndots:5"]}}',
    );
    const ipam: InternalResult = { ips: [{ address: '10.0.0.4/26' }], routes: [{ dst: '10.0.0.4/26' }] };
    assert.equal(
      JSON.stringify(formatResult(ipam, '1.0.0', { abbreviated: true })),
      '{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.4/26"}],"routes":[{"dst":"10.0.0.4/26"}],"dns":{}}',
    );
  });

  it('an empty result is cniVersion + "dns":{}', () => {
    assert.equal(JSON.stringify(formatResult({}, '1.0.0')), '{"cniVersion":"1.0.0","dns":{}}');
  });

  it('rejects versions it cannot produce (code 1)', () => {
    for (const v of ['0.2.0', '0.1.0', '2.0.0', '']) {
      assert.throws(() => formatResult(SAMPLE, v), (e: unknown) => e instanceof CniError && e.code === 1 && e.message.includes(JSON.stringify(v)));
    }
  });

  it('rejects inconsistent results (code 999)', () => {
    const bad: InternalResult[] = [
      { interfaces: [{ name: 'eth0' }], ips: [{ address: '10.0.0.1/24', interface: 1 }] }, // index == length
      { ips: [{ address: '10.0.0.1' }] },
      { ips: [{ address: '10.0.0.1/33' }] },
      { ips: [{ address: '10.0.0.1/24', gateway: 'nope' }] },
      { routes: [{ dst: 'default' }] },
      { interfaces: [{ name: '' }] },
    ];
    for (const r of bad) assert.throws(() => formatResult(r, '1.0.0'), { code: 999 });
  });
});

describe('parseResult', () => {
  // Real outputs of Debian's ptp (cni.md §1.5 / §2.4), including Go's "dns":{}.
  const PTP_031 =
    '{"cniVersion":"0.3.1","interfaces":[{"name":"veth712f1dd3","mac":"16:06:aa:bb:cc:dd"},{"name":"eth0","mac":"3a:cf:aa:bb:cc:dd","sandbox":"/run/netns/ctr2"}],' +
    '"ips":[{"version":"4","interface":1,"address":"10.99.5.2/24","gateway":"10.99.5.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}';
  const PTP_100 =
    '{"cniVersion":"1.0.0","interfaces":[{"name":"vethee188962","mac":"0a:8a:b9:ef:15:09"},{"name":"eth0","mac":"52:41:b7:ce:ed:34","sandbox":"/run/netns/ctr1"},' +
    '{"name":"bwp44e3c6d07347","mac":"8a:b6:c5:88:9c:64"}],"ips":[{"interface":1,"address":"10.99.0.2/24","gateway":"10.99.0.1"}],' +
    '"routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.99.0.1"]}}';

  it('round-trips real 0.3.1 and 1.0.0 results byte for byte', () => {
    for (const text of [PTP_031, PTP_100]) {
      const parsed = parseResult(JSON.parse(text));
      assert.equal(JSON.stringify(formatResult(parsed.result, parsed.cniVersion!)), text);
    }
  });

  it('converts between versions', () => {
    const parsed = parseResult(JSON.parse(PTP_031));
    const out = formatResult(parsed.result, '1.0.0') as { ips: Record<string, unknown>[] };
    assert.deepEqual(out.ips[0], { interface: 1, address: '10.99.5.2/24', gateway: '10.99.5.1' });
  });

  it('reads 1.1.0 extras and tolerates unknown keys and nulls', () => {
    const r = parseResult({
      cniVersion: '1.1.0',
      interfaces: [{ name: 'eth0', mtu: 9000, pciID: 'x', extra: true }],
      ips: [{ address: 'fd00::1/64', interface: 0 }],
      routes: [{ dst: '::/0', table: 5, scope: 253 }],
      dns: null,
      whatever: 1,
    });
    assert.deepEqual(r.result, {
      interfaces: [{ name: 'eth0', mtu: 9000, pciID: 'x' }],
      ips: [{ address: 'fd00::1/64', interface: 0 }],
      routes: [{ dst: '::/0', table: 5, scope: 253 }],
    });
  });

  it('rejects malformed results with code 7 naming the field', () => {
    const cases: [unknown, string][] = [
      [[], 'prevResult'],
      [{ ips: {} }, 'ips'],
      [{ ips: [{ address: '10.0.0.1' }] }, 'ips[0].address'],
      [{ ips: [{ address: '10.0.0.1/24', interface: -1 }] }, 'ips[0].interface'],
      [{ ips: [{ address: '10.0.0.1/24', interface: 'eth0' }] }, 'ips[0].interface'],
      [{ interfaces: [{ mac: 'x' }] }, 'interfaces[0].name'],
      [{ routes: [{ gw: '10.0.0.1' }] }, 'routes[0].dst'],
      [{ dns: { nameservers: '1.1.1.1' } }, 'dns.nameservers'],
    ];
    for (const [raw, field] of cases) {
      assert.throws(
        () => parseResult(raw),
        (e: unknown) => e instanceof CniError && e.code === 7 && e.message.includes(field),
        `expected code 7 naming ${field}`,
      );
    }
  });

  it('rejects 0.2.0-shaped results with code 1', () => {
    assert.throws(() => parseResult({ cniVersion: '0.2.0', ip4: { ip: '10.0.0.2/24' } }), { code: 1 });
  });

  it('prevResultOf: null when absent, internal form otherwise', () => {
    assert.equal(prevResultOf({ name: 'n' }), null);
    assert.deepEqual(prevResultOf({ prevResult: JSON.parse(PTP_031) })?.ips, [{ address: '10.99.5.2/24', gateway: '10.99.5.1', interface: 1 }]);
  });
});
