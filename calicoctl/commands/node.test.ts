// `tortiectl node status` / `node checksystem`: pure parts, then bin/tortiectl end to end against
// two real BIRDs in namespaces this test creates (joined by a veth, one BGP session between them).
//
// The agent stand-in: `node status --run-dir DIR` (or TORTIE_RUN_DIR=DIR) counts the agent as
// running when DIR/cni.sock accepts a connection, so the test listens on DIR/cni.sock itself.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BirdSupervisor } from '../../confd/pkg/supervisor/bird-supervisor.js';
import { birdCommand } from '../../confd/pkg/supervisor/birdc.js';
import { birdTestSkipReason, deleteNetns, ip, killIfRunning, makeNetns, waitFor } from '../../testing/bird-netns.js';
import { CTL_BIN, runCtl } from '../../testing/ipam-plugin-fixture.js';
import { parseBirdShowProtocols } from '../printers/node-status.js';
import {
  birdSockets,
  checkLine,
  checkSystem,
  findTortieNodePids,
  isTortieNodeArgv,
  kernelVersionOk,
  moduleInstalled,
  nodeStatusViewFromReply,
  parseBatchErrors,
  renderCheckSystem,
  resolveRunDir,
} from './node.js';

const lines = (...ls: string[]) => ls.map((l) => l + '\n').join('');

describe('node status: pure parts', () => {
  it('picks the run dir: flag, then TORTIE_RUN_DIR, then /var/run/tortie', () => {
    assert.deepEqual(resolveRunDir('/lab/n1', { TORTIE_RUN_DIR: '/lab/n2' }), { runDir: '/lab/n1', source: 'flag' });
    assert.deepEqual(resolveRunDir(undefined, { TORTIE_RUN_DIR: '/lab/n2/' }), { runDir: '/lab/n2', source: 'env' });
    assert.deepEqual(resolveRunDir(undefined, {}), { runDir: '/var/run/tortie', source: 'default' });
    assert.deepEqual(resolveRunDir('', { TORTIE_RUN_DIR: '' }), { runDir: '/var/run/tortie', source: 'default' });
  });
  it('asks BIRD on the run dir, falling back to /var/run/tortie only for the environment', () => {
    assert.deepEqual(birdSockets('/lab/n1', 'flag'), ['/lab/n1/bird.ctl']);
    assert.deepEqual(birdSockets('/lab/n1', 'env'), ['/lab/n1/bird.ctl', '/var/run/tortie/bird.ctl']);
    assert.deepEqual(birdSockets('/var/run/tortie', 'env'), ['/var/run/tortie/bird.ctl']);
    assert.deepEqual(birdSockets('/var/run/tortie', 'default'), ['/var/run/tortie/bird.ctl']);
  });
  it('recognises tortie-node command lines only', () => {
    assert.equal(isTortieNodeArgv(['/usr/bin/node', '/opt/tortie/bin/tortie-node']), true);
    assert.equal(isTortieNodeArgv(['/usr/bin/node', '/opt/tortie/dist/node/cmd/tortie-node.js', '--x']), true);
    assert.equal(isTortieNodeArgv(['tortie-node']), true);
    assert.equal(isTortieNodeArgv(['/usr/bin/node', '/opt/tortie/bin/tortiectl', 'node', 'status', '--run-dir', '/tmp/tortie-node']), false);
    assert.equal(isTortieNodeArgv(['vim', 'tortie-node.ts']), false);
    assert.equal(isTortieNodeArgv([]), false);
  });
  it('finds tortie-node processes through /proc/*/cmdline', () => {
    const proc = mkdtempSync(join(tmpdir(), 'tortie-fakeproc-'));
    try {
      const put = (pid: string, argv: string[]) => {
        mkdirSync(join(proc, pid));
        writeFileSync(join(proc, pid, 'cmdline'), argv.join('\0') + '\0');
      };
      put('17', ['/usr/bin/node', '/opt/tortie/bin/tortie-node']);
      put('18', ['/usr/bin/node', '/opt/tortie/bin/tortiectl', 'node', 'status']);
      put('19', ['/usr/sbin/bird', '-f']);
      put('20', ['/usr/bin/node', '/opt/tortie/bin/tortie-node']);
      mkdirSync(join(proc, 'self'));
      assert.deepEqual(findTortieNodePids(proc, 20), [17]);
      assert.deepEqual(findTortieNodePids(join(proc, 'missing')), []);
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });
  it('splits one BIRD 2 reply into IPv4 and IPv6 peers', () => {
    const view = nodeStatusViewFromReply(
      lines(
        '0001 BIRD 2.0.12 ready.',
        '2002-Name       Proto      Table      State  Since         Info',
        '1002-device1    Device     ---        up     22:52:32.766  ',
        ' Mesh_192_0_2_12 BGP        ---        up     22:52:34.493  Established   ',
        ' Node_fd80_24e2_f998_72d7__2 BGP        ---        start  22:52:43.313  Active        Socket: Connection refused',
        ' Global_10_0_0_5_port_1790 BGP        ---        start  22:52:43.313  Connect',
        '0000 ',
      ),
    );
    assert.deepEqual(view.ipv4, {
      running: true,
      peers: [
        { peerAddress: '192.0.2.12', peerType: 'node-to-node mesh', state: 'up', since: '22:52:34', info: 'Established' },
        { peerAddress: '10.0.0.5.port.1790', peerType: 'global', state: 'start', since: '22:52:43', info: 'Connect' },
      ],
    });
    assert.deepEqual(view.ipv6, {
      running: true,
      peers: [{ peerAddress: 'fd80:24e2:f998:72d7::2', peerType: 'node specific', state: 'start', since: '22:52:43', info: 'Active Socket: Connection refused' }],
    });
  });
});

describe('node checksystem: pure parts', () => {
  it('prints items as calicoctl does and sums up', () => {
    assert.equal(checkLine('ipip', 'FAIL'), '\t\tipip                \t\t\t\t\tFAIL\n');
    const good = renderCheckSystem([
      { heading: 'Checking kernel version...', items: [{ item: '6.1.0', result: 'OK' }] },
      { heading: 'Checking kernel modules...', items: [{ item: 'ipip', result: 'FAIL', optional: true, note: 'IPIP (tunl0) is not supported by this kernel: …' }] },
    ]);
    assert.equal(good.ok, true);
    assert.equal(
      good.text,
      lines(
        'Checking kernel version...',
        '\t\t6.1.0               \t\t\t\t\tOK',
        'Checking kernel modules...',
        'WARNING: IPIP (tunl0) is not supported by this kernel: …',
        '\t\tipip                \t\t\t\t\tFAIL',
        'System meets minimum system requirements to run Calico!',
      ),
    );
    const bad = renderCheckSystem([{ heading: 'Checking binaries...', items: [{ item: '/usr/sbin/bird', result: 'FAIL', note: '/usr/sbin/bird is missing: the BGP daemon' }] }]);
    assert.equal(bad.ok, false);
    assert.equal(bad.text, lines('Checking binaries...', 'ERROR: /usr/sbin/bird is missing: the BGP daemon', '\t\t/usr/sbin/bird      \t\t\t\t\tFAIL'));
  });
  it('reads ip -batch errors by line', () => {
    assert.deepEqual(
      [...parseBatchErrors('Error: Unknown device type.\nCommand failed -:4\nError: Unknown device type.\nCommand failed -:5\n')],
      [
        [4, 'Error: Unknown device type.'],
        [5, 'Error: Unknown device type.'],
      ],
    );
    assert.equal(parseBatchErrors('').size, 0);
  });
  it('finds installed modules in modules.dep and compares kernel versions', () => {
    const dep = 'kernel/net/ipv4/ipip.ko.xz: kernel/net/ipv4/ip_tunnel.ko.xz\nkernel/drivers/net/vxlan/vxlan.ko: kernel/net/ipv4/udp_tunnel.ko\n';
    assert.equal(moduleInstalled(dep, 'ipip'), true);
    assert.equal(moduleInstalled(dep, 'vxlan'), true);
    assert.equal(moduleInstalled(dep, 'veth'), false);
    assert.equal(moduleInstalled(dep, 'tunnel'), false);
    assert.equal(kernelVersionOk('6.18.44-fc-v669'), true);
    assert.equal(kernelVersionOk('3.10.0-1160.el7.x86_64'), true);
    assert.equal(kernelVersionOk('3.9.11'), false);
    assert.equal(kernelVersionOk('2.6.32'), false);
    assert.equal(kernelVersionOk('banana'), false);
  });
});

/** Runs bin/tortiectl as another user. */
function runAs(uid: number, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(CTL_BIN, args, { uid, gid: uid, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function listenUnix(path: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer((c) => c.end());
    s.once('error', reject);
    s.listen(path, () => resolve(s));
  });
}

const skip = birdTestSkipReason();
const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };

describe('bin/tortiectl node … (as root, BIRD in test namespaces)', { skip: skip ?? false }, () => {
  let dir = '';
  const namespaces: string[] = [];
  const sups: BirdSupervisor[] = [];
  const servers: Server[] = [];
  let dirA = '';
  let dirB = '';

  const birdConfig = (self: string, peer: string, passive: boolean) => `router id ${self};
protocol device { scan time 2; }
protocol bgp Mesh_${peer.split('.').join('_')} {
  local ${self} as 64512;
  neighbor ${peer} as 64512;
  connect delay time 1;
  connect retry time 2;${passive ? '\n  passive on;' : ''}
  ipv4 { import all; export all; };
}
`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-nodestatus-'));
    dirA = join(dir, 'a');
    dirB = join(dir, 'b');
    const nsA = makeNetns('a');
    namespaces.push(nsA);
    const nsB = makeNetns('b');
    namespaces.push(nsB);
    // The veth is created inside A (ip -n), its peer moved straight into B: the root namespace never sees it.
    ip('-n', nsA, 'link', 'add', 'eth-a', 'type', 'veth', 'peer', 'name', 'eth-b', 'netns', nsB);
    ip('-n', nsA, 'addr', 'add', '10.0.0.11/24', 'dev', 'eth-a');
    ip('-n', nsB, 'addr', 'add', '10.0.0.12/24', 'dev', 'eth-b');
    ip('-n', nsA, 'link', 'set', 'eth-a', 'up');
    ip('-n', nsB, 'link', 'set', 'eth-b', 'up');
    const a = new BirdSupervisor({ runDir: dirA, netns: nsA });
    sups.push(a);
    await a.start(birdConfig('10.0.0.11', '10.0.0.12', false));
    const b = new BirdSupervisor({ runDir: dirB, netns: nsB });
    sups.push(b);
    // Calico's mesh: the peer with the greater address waits for the other to connect.
    await b.start(birdConfig('10.0.0.12', '10.0.0.11', true));
    for (const d of [dirA, dirB]) servers.push(await listenUnix(join(d, 'cni.sock')));
    await waitFor(
      'the BGP session to be Established',
      async () => parseBirdShowProtocols((await birdCommand(a.socketPath, 'show protocols')).raw).some((r) => r.name === 'Mesh_10_0_0_12' && r.info === 'Established'),
      30_000,
      200,
    );
  });
  after(async () => {
    try {
      for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
      for (const s of sups) {
        const pid = s.status().pid;
        try {
          await s.stop();
        } finally {
          killIfRunning(pid);
        }
      }
    } finally {
      for (const n of namespaces) deleteNetns(n);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // calicoctl's output, then the line on why the node itself is not listed.
  const table = (peer: string, since: string, self: string) =>
    lines(
      'Calico process is running.',
      '',
      'IPv4 BGP status',
      '+--------------+-------------------+-------+----------+-------------+',
      '| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |    INFO     |',
      '+--------------+-------------------+-------+----------+-------------+',
      `| ${peer.padEnd(12)} | node-to-node mesh | up    | ${since} | Established |`,
      '+--------------+-------------------+-------+----------+-------------+',
      '',
      'IPv6 BGP status',
      'No IPv6 peers found.',
      '',
      `Note: the table lists the BGP peers of this node (${self}); the node itself is not listed because a node is not its own peer.`,
    );
  const sinceOf = (out: string) => /\| up {4}\| (\d\d:\d\d:\d\d) \|/.exec(out)?.[1] ?? 'no since column';

  it('node status --run-dir prints the calicoctl table for the mesh peer', async () => {
    const r = await runCtl(['node', 'status', '--run-dir', dirA], { ...ENV, NODENAME: 'node-a' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, table('10.0.0.12', sinceOf(r.stdout), 'node-a'));
  });

  it('TORTIE_RUN_DIR selects the other node', async () => {
    const r = await runCtl(['node', 'status'], { ...ENV, TORTIE_RUN_DIR: dirB, NODENAME: 'node-b' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, table('10.0.0.11', sinceOf(r.stdout), 'node-b'));
  });

  it('says when the agent is not running (no live cni.sock in the run dir)', async () => {
    const empty = join(dir, 'no-agent');
    mkdirSync(empty);
    const r = await runCtl(['node', 'status', '--run-dir', empty], ENV);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'Calico process is not running.\n');
  });

  it('says when BIRD is not running (agent there, no BIRD socket)', async () => {
    const noBird = join(dir, 'no-bird');
    mkdirSync(noBird);
    servers.push(await listenUnix(join(noBird, 'cni.sock')));
    const r = await runCtl(['node', 'status', '--run-dir', noBird], ENV);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Calico process is running.\n\nThe BGP backend process (BIRD) is not running.\n\n');
  });

  it('shows a peer that went away, its error wrapped as calicoctl does', async () => {
    await sups[1].stop();
    await waitFor(
      'A to notice',
      async () => parseBirdShowProtocols((await birdCommand(sups[0].socketPath, 'show protocols')).raw).some((r) => r.name === 'Mesh_10_0_0_12' && r.state !== 'up'),
      15_000,
      200,
    );
    const r = await runCtl(['node', 'status', '--run-dir', dirA], ENV);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.split('\n').filter((l) => l.startsWith('| 10.0.0.12'));
    assert.equal(rows.length, 1, r.stdout);
    assert.match(rows[0], /^\| 10\.0\.0\.12 +\| node-to-node mesh \| start \| \d\d:\d\d:\d\d \| (Active|Connect|Idle)\b/);
  });

  it('must run as root', async () => {
    for (const verb of ['status', 'checksystem']) {
      const r = await runAs(65534, ['node', verb, '--run-dir', dirA].slice(0, verb === 'status' ? 4 : 2));
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr, 'Need super user privileges: Operation not permitted\n');
    }
  });

  it('rejects an unknown node subcommand', async () => {
    const r = await runCtl(['node', 'frob'], ENV);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /node needs one of: status, checksystem \(got "frob"\)/);
  });
});

describe('bin/tortiectl node checksystem on this host', { skip: process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false }, () => {
  it('probes without touching the root namespace and names what is missing', async () => {
    // (Other tests may add links and namespaces meanwhile: only the probe's own names are checked.)
    const probeNames = (s: string) => s.split('\n').filter((l) => /tortie-cs/.test(l));
    assert.deepEqual(probeNames(ip('-o', 'link', 'show')), []);
    const r = await runCtl(['node', 'checksystem'], ENV);
    assert.deepEqual(probeNames(ip('-o', 'link', 'show')), [], 'no probe device in the root namespace');
    assert.deepEqual(probeNames(ip('netns', 'list')), [], 'no probe namespace left behind');
    const out = r.stdout;
    assert.match(out, /^Checking kernel version\.\.\.\n\t\t\S+ *\t\t\t\t\t(OK|FAIL)\nChecking kernel modules\.\.\.\n/);
    for (const item of ['veth', 'bridge', 'vxlan', 'ipip', '/usr/sbin/ip', '/usr/sbin/bird', '/usr/sbin/birdc', 'nft', 'iptables', 'net.ipv4.ip_forward']) {
      assert.match(out, new RegExp(`\\t\\t${item.replace(/[.]/g, '\\.')} *\\t\\t\\t\\t\\t(OK|FAIL)\\n`), item);
    }
    // This kernel has no IPIP (no ipip module built in, no module tree to load it from).
    const ipipAvailable = (await checkSystem()).flatMap((s) => s.items).find((i) => i.item === 'ipip')!.result === 'OK';
    if (!ipipAvailable) {
      assert.match(
        out,
        /\nWARNING: IPIP \(tunl0\) is not supported by this kernel: pools with ipipMode Always\/CrossSubnet cannot work here; use vxlanMode \(ip: Error: Unknown device type\.\)\n\t\tipip {16}\t\t\t\t\tFAIL\n/,
      );
    }
    // IPIP is optional (VXLAN or no encapsulation work without it): the verdict depends on the rest.
    if (r.code === 0) assert.match(out, /\nSystem meets minimum system requirements to run Calico!\n$/);
    else assert.equal(r.stderr, "System doesn't meet one or more minimum systems requirements to run Calico\n");
  });

  it('reports an installed but unloaded ipip module from modules.dep, without loading it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tortie-fakemods-'));
    try {
      mkdirSync(join(root, 'lib', '9.9.9'), { recursive: true });
      mkdirSync(join(root, 'sys'));
      writeFileSync(join(root, 'lib', '9.9.9', 'modules.dep'), 'kernel/net/ipv4/ipip.ko.zst: kernel/net/ipv4/tunnel4.ko.zst\n');
      const items = (await checkSystem({ kernelRelease: '9.9.9', modulesDir: join(root, 'lib'), sysModuleDir: join(root, 'sys') })).flatMap((s) => s.items);
      assert.deepEqual(
        items.find((i) => i.item === 'ipip'),
        { item: 'ipip', result: 'OK', note: 'ipip: module ipip is installed but not loaded; the kernel loads it on first use' },
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
