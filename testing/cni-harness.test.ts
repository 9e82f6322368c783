import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  argsToString,
  buildRequest,
  cacheFilePath,
  canUseNetns,
  createNetns,
  execPlugin,
  execVersion,
  findInPath,
  ipIn,
  linkNames,
  readCache,
  runConflistAdd,
  runConflistCheck,
  runConflistDel,
  runConflistGc,
  runConflistStatus,
  selectConflistVersion,
  sortKeysDeep,
  validateResultShape,
  type Conflist,
  type RuntimeOptions,
  type TestNetns,
} from './cni-harness.js';

// A recording plugin, deliberately plain Node (independent of the code under test). It appends
// {command, env, conf} to conf.dumpFile; on ADD it passes prevResult through (or invents a result),
// appending an interface named conf.tag; conf.failOn = <command> makes it fail with code 11.
const DUMP_PLUGIN = `#!${process.execPath}
import { appendFileSync, readFileSync, writeSync } from 'node:fs';
const stdin = readFileSync(0, 'utf8');
const cmd = process.env.CNI_COMMAND;
let conf = {};
try { conf = JSON.parse(stdin); } catch {}
if (conf.dumpFile) appendFileSync(conf.dumpFile, JSON.stringify({ command: cmd, env: { ...process.env }, stdin, conf }) + '\\n');
const out = (o) => writeSync(1, JSON.stringify(o));
if (cmd === 'VERSION') { out({ cniVersion: conf.cniVersion, supportedVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] }); process.exit(0); }
if (conf.failOn === cmd) { out({ code: 11, msg: 'try again later', details: 'dump asked to fail on ' + cmd }); process.exit(1); }
if (cmd === 'ADD') {
  let res;
  if (conf.prevResult) res = { ...conf.prevResult, cniVersion: conf.cniVersion };
  else {
    const old = !conf.cniVersion.startsWith('1.');
    res = { cniVersion: conf.cniVersion, interfaces: [{ name: process.env.CNI_IFNAME, sandbox: process.env.CNI_NETNS }],
            ips: [{ ...(old ? { version: '4' } : {}), interface: 0, address: '192.0.2.2/24' }], dns: {} };
  }
  if (conf.tag) res.interfaces = [...(res.interfaces ?? []), { name: conf.tag }];
  out(res);
}
process.exit(0);
`;

interface DumpRecord {
  command: string;
  env: Record<string, string>;
  stdin: string;
  conf: Record<string, unknown>;
}

function readDump(file: string): DumpRecord[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as DumpRecord);
}

function writeExecutable(path: string, text: string): void {
  writeFileSync(path, text);
  chmodSync(path, 0o755);
}

describe('harness helpers', () => {
  it('sortKeysDeep sorts keys at every level, keeps array order', () => {
    assert.equal(JSON.stringify(sortKeysDeep({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } })), '{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}');
  });

  it('argsToString', () => {
    assert.equal(argsToString(undefined), '');
    assert.equal(argsToString([['IgnoreUnknown', '1'], ['K8S_POD_NAME', 'p']]), 'IgnoreUnknown=1;K8S_POD_NAME=p');
    assert.equal(argsToString({ IP: '10.0.0.5' }), 'IP=10.0.0.5');
    assert.equal(argsToString('raw;string'), 'raw;string');
  });

  it('selectConflistVersion: highest of cniVersion ∪ cniVersions known to libcni', () => {
    const l: Conflist = { name: 'n', cniVersion: '0.4.0', cniVersions: ['0.4.0', '1.0.0', '1.1.0', '2.0.0'], plugins: [{ type: 'x' }] };
    assert.equal(selectConflistVersion(l), '1.1.0');
    assert.equal(selectConflistVersion(l, '1.0.0'), '1.0.0');
    assert.equal(selectConflistVersion({ name: 'n', cniVersion: '0.3.1', plugins: [] }), '0.3.1');
  });

  it('buildRequest: runtimeConfig = declared capabilities ∩ capability args', () => {
    const req = buildRequest(
      { type: 'portmap', capabilities: { portMappings: true, bandwidth: false }, snat: true },
      'net',
      '1.0.0',
      undefined,
      { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], bandwidth: { ingressRate: 1 }, unknownCap: 1 },
    );
    assert.equal(
      JSON.stringify(req),
      '{"capabilities":{"bandwidth":false,"portMappings":true},"cniVersion":"1.0.0","name":"net",' +
        '"runtimeConfig":{"portMappings":[{"containerPort":80,"hostPort":8080,"protocol":"tcp"}]},"snat":true,"type":"portmap"}',
    );
    assert.equal('runtimeConfig' in buildRequest({ type: 'x' }, 'n', '1.0.0', undefined, { mac: 'x' }), false);
  });

  it('cacheFilePath follows libcni', () => {
    assert.equal(cacheFilePath('/var/lib/cni', 'k8s-pod-network', 'abc', 'eth0'), '/var/lib/cni/results/k8s-pod-network-abc-eth0');
  });

  it('validateResultShape flags version-specific mistakes', () => {
    const ok031 = { cniVersion: '0.3.1', interfaces: [{ name: 'eth0', sandbox: '/n' }], ips: [{ version: '4', interface: 0, address: '10.0.0.2/24' }], dns: {} };
    assert.deepEqual(validateResultShape(ok031, '0.3.1', { ifname: 'eth0', netns: '/n' }), []);
    assert.equal(validateResultShape(ok031, '1.0.0').length, 2); // wrong cniVersion + version field
    assert.equal(validateResultShape({ ...ok031, ips: [{ interface: 1, address: '10.0.0.2/24' }] }, '0.3.1').length, 2);
    assert.deepEqual(validateResultShape(ok031, '0.3.1', { ifname: 'eth1' }).length, 1);
  });
});

describe('harness with a recording plugin (no networking)', () => {
  let dir = '';
  let bin = '';
  let cacheDir = '';
  let dumpFile = '';

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-harness-'));
    bin = join(dir, 'bin');
    cacheDir = join(dir, 'cache');
    mkdirSync(bin);
    writeExecutable(join(bin, 'dump'), DUMP_PLUGIN);
    writeExecutable(join(bin, 'sleeper'), '#!/bin/sh\nexec sleep 30\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  let seq = 0;
  function fresh(): string {
    dumpFile = join(dir, `dump-${++seq}.jsonl`);
    return dumpFile;
  }

  function list(version: string, extra: Partial<Conflist> = {}): Conflist {
    return {
      cniVersion: version,
      name: `net${seq}`,
      plugins: [
        { type: 'dump', tag: 'tagA', dumpFile, capabilities: { portMappings: true, mac: false } },
        { type: 'dump', tag: 'tagB', dumpFile, capabilities: { bandwidth: true } },
      ],
      ...extra,
    };
  }

  function rt(containerId: string, extra: Partial<RuntimeOptions> = {}): RuntimeOptions {
    return { containerId, netns: '/run/netns/fake', ifname: 'eth0', cacheDir, cniPath: ['/nonexistent', bin], ...extra };
  }

  it('findInPath: first regular file in the directories', () => {
    assert.equal(findInPath('dump', ['/nonexistent', bin]), join(bin, 'dump'));
    assert.throws(() => findInPath('nope', [bin]), /failed to find plugin "nope"/);
    assert.throws(() => findInPath('../bin/dump', [bin]), /invalid plugin name/);
  });

  it('execPlugin: clean env (CNI_* + PATH), exact stdin', async () => {
    fresh();
    const r = await execPlugin(join(bin, 'dump'), {
      command: 'DEL',
      containerId: 'c1',
      ifname: 'eth0',
      args: [['IgnoreUnknown', '1']],
      cniPath: [bin],
      stdinConfig: { cniVersion: '1.0.0', name: 'n', type: 'dump', dumpFile },
    });
    assert.equal(r.code, 0, r.stderr);
    const [rec] = readDump(dumpFile);
    assert.deepEqual(Object.keys(rec!.env).sort(), ['CNI_ARGS', 'CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_NETNS', 'CNI_PATH', 'PATH']);
    assert.equal(rec!.env.CNI_NETNS, '');
    assert.equal(rec!.env.CNI_ARGS, 'IgnoreUnknown=1');
    assert.equal(rec!.env.CNI_PATH, bin);
    assert.equal(rec!.stdin, r.stdin);
  });

  it('execVersion sends the libcni probe', async () => {
    fresh();
    const r = await execVersion(join(bin, 'dump'), { requested: '1.0.0' });
    assert.deepEqual(r.json, { cniVersion: '1.0.0', supportedVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
    assert.equal(r.env.CNI_NETNS, 'dummy');
    assert.equal(r.env.CNI_IFNAME, 'dummy');
    assert.equal(r.env.CNI_PATH, 'dummy');
  });

  it('execPlugin: timeout kills the plugin', async () => {
    const t0 = Date.now();
    const r = await execPlugin(join(bin, 'sleeper'), { command: 'ADD', stdinConfig: {}, timeoutMs: 300 });
    assert.equal(r.timedOut, true);
    assert.equal(r.code, null);
    assert.ok(Date.now() - t0 < 10_000);
  });

  it('ADD: injection, capabilities, prevResult chaining, cache file', async () => {
    fresh();
    const l = list('1.0.0');
    const capabilityArgs = { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], mac: '02:00:00:00:00:09', bandwidth: { ingressRate: 1000 }, unknownCap: 1 };
    const o = await runConflistAdd(l, rt('ctr-add', { args: [['IgnoreUnknown', '1'], ['K8S_POD_NAME', 'web']], capabilityArgs }));
    assert.equal(o.ok, true, JSON.stringify(o.error));
    assert.deepEqual(o.problems, []);
    const recs = readDump(dumpFile);
    assert.deepEqual(recs.map((r) => [r.command, r.conf.tag]), [['ADD', 'tagA'], ['ADD', 'tagB']]);
    const [a, b] = recs;
    assert.equal(a!.conf.name, l.name);
    assert.equal(a!.conf.cniVersion, '1.0.0');
    assert.equal('prevResult' in a!.conf, false);
    assert.deepEqual(a!.conf.runtimeConfig, { portMappings: capabilityArgs.portMappings });
    assert.deepEqual(a!.conf.capabilities, { portMappings: true, mac: false }); // passed through, as libcni does
    assert.deepEqual(b!.conf.runtimeConfig, { bandwidth: { ingressRate: 1000 } });
    assert.deepEqual((b!.conf.prevResult as { interfaces: { name: string }[] }).interfaces.map((i) => i.name), ['eth0', 'tagA']);
    assert.equal(a!.env.CNI_ARGS, 'IgnoreUnknown=1;K8S_POD_NAME=web');
    assert.equal(a!.stdin, JSON.stringify(sortKeysDeep(JSON.parse(a!.stdin))), 'request keys are sorted');
    assert.deepEqual((o.result!.interfaces as { name: string }[]).map((i) => i.name), ['eth0', 'tagA', 'tagB']);

    const file = cacheFilePath(cacheDir, l.name, 'ctr-add', 'eth0');
    assert.equal(o.cacheFile, file);
    const rec = JSON.parse(readFileSync(file, 'utf8'));
    assert.deepEqual(Object.keys(rec), ['kind', 'containerId', 'config', 'ifName', 'networkName', 'netns', 'cniArgs', 'capabilityArgs', 'result']);
    assert.equal(rec.kind, 'cniCacheV1');
    assert.deepEqual(JSON.parse(Buffer.from(rec.config, 'base64').toString('utf8')), l);
    assert.deepEqual(rec.cniArgs, [['IgnoreUnknown', '1'], ['K8S_POD_NAME', 'web']]);
    assert.deepEqual(rec.capabilityArgs, capabilityArgs);
    assert.deepEqual(rec.result, o.result);
  });

  it('DEL (1.0.0): reverse order, cached result as prevResult for every plugin, cache removed; DEL twice succeeds', async () => {
    fresh();
    const l = list('1.0.0');
    const add = await runConflistAdd(l, rt('ctr-del'));
    assert.equal(add.ok, true);
    const del = await runConflistDel(l, rt('ctr-del'));
    assert.equal(del.ok, true, JSON.stringify(del.error));
    assert.deepEqual(del.problems, []);
    const dels = readDump(dumpFile).filter((r) => r.command === 'DEL');
    assert.deepEqual(dels.map((r) => r.conf.tag), ['tagB', 'tagA']);
    for (const r of dels) assert.deepEqual(r.conf.prevResult, add.result);
    assert.equal(existsSync(add.cacheFile!), false);

    const again = await runConflistDel(l, rt('ctr-del'));
    assert.equal(again.ok, true);
    const dels2 = readDump(dumpFile).filter((r) => r.command === 'DEL').slice(2);
    assert.equal(dels2.length, 2);
    for (const r of dels2) assert.equal('prevResult' in r.conf, false);
  });

  it('DEL (0.3.1): no prevResult even though the cache exists; cache removed', async () => {
    fresh();
    const l = list('0.3.1');
    const add = await runConflistAdd(l, rt('ctr-031'));
    assert.equal(add.ok, true, JSON.stringify(add.error));
    assert.deepEqual(add.problems, []);
    assert.equal(existsSync(add.cacheFile!), true);
    const del = await runConflistDel(l, rt('ctr-031'));
    assert.equal(del.ok, true);
    for (const r of readDump(dumpFile).filter((x) => x.command === 'DEL')) assert.equal('prevResult' in r.conf, false);
    assert.equal(existsSync(add.cacheFile!), false);
  });

  it('CHECK: refused below 0.4.0, skipped with disableCheck, cached prevResult otherwise', async () => {
    fresh();
    const refused = await runConflistCheck(list('0.3.1'), rt('ctr-chk'));
    assert.equal(refused.ok, false);
    assert.match(refused.error!.msg, /configuration version "0.3.1" does not support the CHECK command/);
    assert.equal(refused.calls.length, 0);

    const l = list('0.4.0');
    const add = await runConflistAdd(l, rt('ctr-chk'));
    assert.equal(add.ok, true);
    const chk = await runConflistCheck(l, rt('ctr-chk'));
    assert.equal(chk.ok, true);
    const checks = readDump(dumpFile).filter((r) => r.command === 'CHECK');
    assert.deepEqual(checks.map((r) => r.conf.tag), ['tagA', 'tagB']);
    for (const r of checks) assert.deepEqual(r.conf.prevResult, add.result);

    const skipped = await runConflistCheck({ ...l, disableCheck: true }, rt('ctr-chk'));
    assert.equal(skipped.ok, true);
    assert.equal(skipped.calls.length, 0);
    await runConflistDel(l, rt('ctr-chk'));
  });

  it('a failing plugin stops the chain: error parsed from stdout, no cache written', async () => {
    fresh();
    const l = list('1.0.0');
    l.plugins[1]!.failOn = 'ADD';
    const o = await runConflistAdd(l, rt('ctr-fail'));
    assert.equal(o.ok, false);
    assert.deepEqual(o.error, {
      pluginType: 'dump',
      code: 11,
      msg: 'try again later',
      details: 'dump asked to fail on ADD',
      exitCode: 1,
      stderr: '',
    });
    assert.equal(existsSync(cacheFilePath(cacheDir, l.name, 'ctr-fail', 'eth0')), false);
    assert.deepEqual(o.problems, []);
  });

  it('a missing plugin is reported', async () => {
    fresh();
    const o = await runConflistAdd({ cniVersion: '1.0.0', name: 'missing', plugins: [{ type: 'no-such-plugin' }] }, rt('ctr-x'));
    assert.equal(o.ok, false);
    assert.match(o.error!.msg, /failed to find plugin "no-such-plugin"/);
  });

  it('refuses invalid container IDs / ifnames like libcni', async () => {
    fresh();
    assert.match((await runConflistAdd(list('1.0.0'), rt('bad/id'))).error!.msg, /container ID/);
    assert.match((await runConflistAdd(list('1.0.0'), rt('ok', { ifname: 'a-very-long-ifname' }))).error!.msg, /interface name/);
  });

  it('STATUS: only for 1.1.0 lists, with empty CONTAINERID/NETNS/IFNAME', async () => {
    fresh();
    const none = await runConflistStatus(list('1.0.0'), { cniPath: [bin] });
    assert.equal(none.ok, true);
    assert.equal(none.calls.length, 0);
    const o = await runConflistStatus(list('1.1.0'), { cniPath: [bin] });
    assert.equal(o.ok, true);
    const recs = readDump(dumpFile);
    assert.deepEqual(recs.map((r) => r.command), ['STATUS', 'STATUS']);
    assert.equal(recs[0]!.env.CNI_CONTAINERID, '');
    assert.equal(recs[0]!.env.CNI_IFNAME, '');
    assert.equal('runtimeConfig' in recs[0]!.conf, false);
  });

  it('GC: DELs stale cached attachments, then GC with both keys', async () => {
    fresh();
    const l = list('1.1.0');
    assert.equal((await runConflistAdd(l, rt('keep'))).ok, true);
    assert.equal((await runConflistAdd(l, rt('stale', { args: 'K=V' }))).ok, true);
    const valid = [{ containerID: 'keep', ifname: 'eth0' }];
    const o = await runConflistGc(l, { cniPath: [bin], cacheDir, validAttachments: valid });
    assert.equal(o.ok, true, JSON.stringify(o.errors));
    assert.deepEqual(o.deleted, [{ containerID: 'stale', ifname: 'eth0' }]);
    const recs = readDump(dumpFile).filter((r) => r.command !== 'ADD');
    assert.deepEqual(recs.map((r) => `${r.command} ${r.env.CNI_CONTAINERID}`), ['DEL stale', 'DEL stale', 'GC ', 'GC ']);
    assert.equal(recs[0]!.env.CNI_ARGS, 'K=V'); // from the cache
    assert.deepEqual(recs[2]!.conf['cni.dev/valid-attachments'], valid);
    assert.deepEqual(recs[2]!.conf['cni.dev/attachments'], valid);
    assert.equal(existsSync(cacheFilePath(cacheDir, l.name, 'stale', 'eth0')), false);
    assert.equal(existsSync(cacheFilePath(cacheDir, l.name, 'keep', 'eth0')), true);

    // cnitool gc: no list → everything cached is DELed and GC gets no key.
    fresh();
    const l2 = { ...l, plugins: l.plugins.map((p) => ({ ...p, dumpFile })) };
    const all = await runConflistGc(l2, { cniPath: [bin], cacheDir, validAttachments: null });
    assert.deepEqual(all.deleted, [{ containerID: 'keep', ifname: 'eth0' }]);
    const gcs = readDump(dumpFile).filter((r) => r.command === 'GC');
    assert.equal(gcs.length, 2);
    assert.equal('cni.dev/valid-attachments' in gcs[0]!.conf, false);
  });
});

// ---------------------------------------------------------------------------------------------------
// Real plugins. Everything happens inside two namespaces created here: a "host" one in which the
// plugins run (through `ip netns exec`), and a "container" one passed as CNI_NETNS. The root network
// namespace is never touched.

const PTP = '/usr/lib/cni/ptp';
const realSkip = !canUseNetns()
  ? 'needs root (network namespaces) and /usr/sbin/ip'
  : !existsSync(PTP) || !existsSync('/usr/lib/cni/host-local')
    ? '/usr/lib/cni/ptp or host-local is not installed (apt-get install containernetworking-plugins)'
    : false;

describe('harness against Debian ptp + host-local in throwaway namespaces', { skip: realSkip }, () => {
  let hostNs: TestNetns | undefined;
  let ctrNs: TestNetns | undefined;
  let dir = '';
  let bin = '';
  let cacheDir = '';
  let ipamDir = '';
  let rootLinksBefore: string[] = [];
  let rootForwardBefore = '';
  const SUBNET_PREFIX = '10.99.200.';

  before(() => {
    rootLinksBefore = linkNames();
    rootForwardBefore = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
    dir = mkdtempSync(join(tmpdir(), 'tortie-harness-ptp-'));
    bin = join(dir, 'bin');
    cacheDir = join(dir, 'cache');
    ipamDir = join(dir, 'ipam');
    mkdirSync(bin);
    writeExecutable(join(bin, 'dump'), DUMP_PLUGIN);
    const skel = new URL('../cni-plugin/pkg/skel/index.js', import.meta.url).href;
    // A pass-through chained plugin built on our skel: checks that real Go results survive
    // parseResult → formatResult unchanged.
    writeExecutable(
      join(bin, 'tortie-pass'),
      `#!${process.execPath}
import { runPlugin, prevResultOf, CniError } from ${JSON.stringify(skel)};
const need = (inv) => { const p = prevResultOf(inv.config); if (!p) throw new CniError(7, 'must be called as a chained plugin'); return p; };
runPlugin({ add: need, del() {}, check(inv) { need(inv); } }, ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
`,
    );
    hostNs = createNetns('tortie-test');
    ctrNs = createNetns('tortie-test');
  });

  after(() => {
    ctrNs?.delete();
    hostNs?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function ptpList(version: string, name: string, extra: Record<string, unknown>[] = []): Conflist {
    return {
      cniVersion: version,
      name,
      plugins: [
        {
          type: 'ptp',
          mtu: 1400,
          ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: `${SUBNET_PREFIX}0/24` }]], routes: [{ dst: '0.0.0.0/0' }] },
          dns: { nameservers: [`${SUBNET_PREFIX}1`] },
        },
        ...(extra as Conflist['plugins']),
      ],
    };
  }

  function rt(containerId: string): RuntimeOptions {
    return {
      containerId,
      netns: ctrNs!.path,
      ifname: 'eth0',
      cacheDir,
      cniPath: ['/usr/lib/cni', bin],
      wrapper: hostNs!.wrapper,
      timeoutMs: 30_000,
    };
  }

  function allocatedIps(net: string): string[] {
    const d = join(ipamDir, net);
    return existsSync(d) ? readdirSync(d).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
  }

  it('VERSION probe of ptp', async () => {
    const r = await execVersion(PTP, { requested: '1.0.0' });
    assert.equal(r.code, 0);
    assert.ok((r.json as { supportedVersions: string[] }).supportedVersions.includes('1.0.0'));
  });

  it('ADD / CHECK / DEL / DEL on a 1.0.0 list; the root namespace is untouched', async () => {
    const l = ptpList('1.0.0', 'tortie-ptp', [{ type: 'tortie-pass' }]);
    const add = await runConflistAdd(l, rt('harness-ptp-1'));
    assert.equal(add.ok, true, JSON.stringify(add.error));
    assert.deepEqual(add.problems, []);

    // ptp's own output, re-encoded by our skel, is byte-identical to Go's (modulo indentation).
    const ptpOut = add.calls[0]!.exec!.stdout;
    assert.equal(add.calls[1]!.exec!.stdout, JSON.stringify(JSON.parse(ptpOut)) + '\n');

    const res = add.result as { interfaces: { name: string; sandbox?: string }[]; ips: { address: string; interface: number }[] };
    const hostVeth = res.interfaces.find((i) => !i.sandbox)!.name;
    const addr = res.ips[0]!.address;
    assert.ok(addr.startsWith(SUBNET_PREFIX), addr);
    assert.deepEqual(res.interfaces[res.ips[0]!.interface], res.interfaces.find((i) => i.name === 'eth0'));
    assert.match(ipIn(ctrNs!.name, ['-o', '-4', 'addr', 'show', 'dev', 'eth0']), new RegExp(addr.replace(/\./g, '\\.')));
    assert.ok(linkNames(hostNs!.name).includes(hostVeth), 'host veth lives in the host namespace');
    assert.ok(!linkNames().includes(hostVeth), 'host veth is not in the root namespace');
    assert.deepEqual(allocatedIps('tortie-ptp'), [addr.split('/')[0]]);
    assert.deepEqual(readCache(add.cacheFile!)?.result, add.result);

    const chk = await runConflistCheck(l, rt('harness-ptp-1'));
    assert.equal(chk.ok, true, JSON.stringify(chk.error));

    const del = await runConflistDel(l, rt('harness-ptp-1'));
    assert.equal(del.ok, true, JSON.stringify(del.error));
    assert.deepEqual(del.calls.map((c) => c.pluginType), ['tortie-pass', 'ptp']);
    assert.ok(!linkNames(hostNs!.name).includes(hostVeth));
    assert.ok(!linkNames(ctrNs!.name).includes('eth0'));
    assert.deepEqual(allocatedIps('tortie-ptp'), []);
    assert.equal(existsSync(add.cacheFile!), false);

    const again = await runConflistDel(l, rt('harness-ptp-1'));
    assert.equal(again.ok, true, JSON.stringify(again.error));
    assert.equal('prevResult' in again.calls[0]!.request, false);

    const newRootLinks = linkNames().filter((n) => !rootLinksBefore.includes(n) && n === hostVeth);
    assert.deepEqual(newRootLinks, []);
    assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), rootForwardBefore);
  });

  for (const [version, expectPrev] of [
    ['0.3.1', false],
    ['0.4.0', true],
  ] as const) {
    it(`${version} list: prevResult on DEL ${expectPrev ? 'is' : 'is not'} sent`, async () => {
      const dumpFile = join(dir, `ptp-${version}.jsonl`);
      const l = ptpList(version, `tortie-ptp-${version.replace(/\./g, '')}`, [{ type: 'dump', dumpFile }, { type: 'tortie-pass' }]);
      const id = `harness-ptp-${version.replace(/\./g, '')}`;
      const add = await runConflistAdd(l, rt(id));
      assert.equal(add.ok, true, JSON.stringify(add.error));
      assert.deepEqual(add.problems, []);
      const ptpJson = JSON.parse(add.calls[0]!.exec!.stdout) as { ips: { version?: string }[] };
      assert.equal(ptpJson.ips[0]!.version, '4');
      assert.equal(add.calls[2]!.exec!.stdout, JSON.stringify(ptpJson) + '\n');
      const del = await runConflistDel(l, rt(id));
      assert.equal(del.ok, true, JSON.stringify(del.error));
      const delRec = readDump(dumpFile).find((r) => r.command === 'DEL')!;
      assert.equal('prevResult' in delRec.conf, expectPrev);
      if (expectPrev) assert.deepEqual(delRec.conf.prevResult, add.result);
      assert.equal(existsSync(add.cacheFile!), false);
      assert.equal((await runConflistDel(l, rt(id))).ok, true);
    });
  }
});
