// Proves the runtime rig with Debian's own CNI plugins (ptp, bridge, host-local from
// containernetworking-plugins), independent of Tortie's plugin: containers started through containerd
// (`ctr run --cni`) and podman (CNI backend) get addresses, reach each other and the node, and their
// removal runs DEL (host-local's allocation file disappears). Recording wrappers capture what each
// runtime sends. Needs root and the Debian packages containerd, podman, busybox-static,
// containernetworking-plugins; otherwise the tests are skipped with the reason.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { containerdUnavailableReason, ContainerdRig, withContainerd } from './containerd.js';
import { testImage } from './common.js';
import { canBuildImage, IMAGE_REF, REQUIRED_APPLETS } from './image.js';
import { type NodeHost, nodeUnavailableReason, withNode } from './node.js';
import { podmanUnavailableReason, withPodman } from './podman.js';
import { readRecords, writeRecorder, type RecordedCall } from './recorder.js';
import { runCmd } from './proc.js';

const DEBIAN_CNI = '/usr/lib/cni';

function pluginsMissing(): string | null {
  for (const p of ['ptp', 'bridge', 'host-local']) if (!existsSync(join(DEBIAN_CNI, p))) return `${DEBIAN_CNI}/${p} missing (apt-get install containernetworking-plugins)`;
  return null;
}

const baseSkip = nodeUnavailableReason() ?? canBuildImage() ?? pluginsMissing();
const ctrSkip = baseSkip ?? containerdUnavailableReason();
const podSkip = baseSkip ?? podmanUnavailableReason();

/**
 * Paths a leaky containerd or podman would create on the machine; none may appear during the tests.
 * (/var/lib/cni and /opt/cni are left out: other CNI tests on the machine may create them.)
 */
const WATCHED = ['/run/containerd', '/run/libpod', '/run/containers', '/var/lib/containers', '/var/lib/containerd', '/run/crun'];

function ptpConflist(name: string, subnet: string, dataDir: string): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name,
    plugins: [{ type: 'ptp', mtu: 1400, ipam: { type: 'host-local', subnet, dataDir, routes: [{ dst: '0.0.0.0/0' }] } }],
  };
}

function bridgeConflist(name: string, bridge: string, subnet: string, dataDir: string): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name,
    plugins: [{ type: 'bridge', bridge, isGateway: true, ipMasq: false, ipam: { type: 'host-local', subnet, dataDir, routes: [{ dst: '0.0.0.0/0' }] } }],
  };
}

/** host-local's allocation files (one per IP) for a network. */
function allocations(dataDir: string, net: string): string[] {
  const d = join(dataDir, net);
  if (!existsSync(d)) return [];
  return readdirSync(d).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f) || f.includes(':'));
}

/** Writes recording wrappers for ptp, bridge and host-local into <dir>/bin, logging into <dir>/log. */
function recorders(dir: string): { bin: string; log: string } {
  const bin = join(dir, 'bin');
  const log = join(dir, 'log');
  for (const p of ['ptp', 'bridge', 'host-local']) writeRecorder(bin, p, join(DEBIAN_CNI, p), log);
  return { bin, log };
}

function cniEnv(r: RecordedCall): Record<string, string> {
  return Object.fromEntries(Object.entries(r.env).filter(([k]) => k.startsWith('CNI_')));
}

async function pingFromNode(node: NodeHost, ip: string): Promise<boolean> {
  const r = await node.run(['ping', '-c', '1', '-W', '2', ip], { timeoutMs: 10_000 });
  return r.code === 0;
}

const watchedBefore = new Map(WATCHED.map((p) => [p, existsSync(p)]));

describe('runtime rig: test image', { skip: canBuildImage() ?? false }, () => {
  it('builds an OCI archive with busybox and its applets', async () => {
    const img = testImage();
    assert.equal(img.ref, IMAGE_REF);
    const list = await runCmd(['tar', '-tf', img.archive]);
    assert.equal(list.code, 0);
    for (const f of ['oci-layout', 'index.json']) assert.ok(list.stdout.split('\n').includes(f), f);
    const index = JSON.parse((await runCmd(['tar', '-xOf', img.archive, 'index.json'])).stdout) as { manifests: { annotations: Record<string, string> }[] };
    assert.equal(index.manifests[0]!.annotations['io.containerd.image.name'], IMAGE_REF);
    const manifestHex = img.manifestDigest.slice('sha256:'.length);
    const manifest = JSON.parse((await runCmd(['tar', '-xOf', img.archive, `blobs/sha256/${manifestHex}`])).stdout) as { layers: { digest: string }[] };
    const layerHex = manifest.layers[0]!.digest.slice('sha256:'.length);
    const layer = await runCmd(['sh', '-c', 'tar -xOf "$1" "blobs/sha256/$2" | tar -tvf -', 'sh', img.archive, layerHex]);
    assert.equal(layer.code, 0, layer.stderr);
    assert.match(layer.stdout, /\.\/bin\/busybox\n/);
    for (const a of REQUIRED_APPLETS) assert.match(layer.stdout, new RegExp(`\\./bin/${a} -> busybox`), a);
  });
});

describe('runtime rig: node host', { skip: baseSkip ?? false }, () => {
  it('isolates links, sysfs and runtime paths, and cleans up', async () => {
    let name = '';
    let dir = '';
    await withNode({}, async (node) => {
      name = node.name;
      dir = node.dir;
      assert.ok(existsSync(node.netnsPath));
      const links = await node.run(['ls', '/sys/class/net']);
      assert.deepEqual(links.stdout.trim().split('\n'), ['lo'], 'fresh sysfs shows only the node netns');
      const cg = await node.run(['ls', '/sys/fs/cgroup']);
      assert.ok(cg.stdout.trim().length > 0, 'cgroup mounts kept');
      // Writes to shadowed paths land in the node's temp dir, not on the machine.
      const w = await node.run(['sh', '-c', 'mkdir -p /run/containerd/probe /var/lib/cni/probe && echo x > /etc/cni/net.d/probe && echo y > /opt/cni/bin/probe']);
      assert.equal(w.code, 0, w.stderr);
      assert.ok(existsSync(join(node.shadowDir('/run/containerd'), 'probe')));
      assert.ok(existsSync(join(node.shadowDir('/var/lib/cni'), 'probe')));
      assert.equal(readFileSync(join(node.cniConfDir, 'probe'), 'utf8'), 'x\n');
      assert.equal(readFileSync(join(node.cniBinDir, 'probe'), 'utf8'), 'y\n');
      for (const p of ['/etc/cni/net.d/probe', '/opt/cni/bin/probe', '/var/lib/cni/probe', '/run/containerd/probe']) assert.equal(existsSync(p), false, `${p} not on the machine`);
      for (const p of WATCHED) assert.equal(existsSync(p), watchedBefore.get(p), `${p} unchanged on the machine`);
      // A stray long-running process in the node is found and killed at close.
      const stray = node.spawn(['sleep', '1000'], { stdio: 'ignore' });
      assert.ok(stray.pid! > 0);
    });
    assert.equal(existsSync(`/run/netns/${name}`), false, 'netns deleted');
    assert.equal(existsSync(dir), false, 'temp dir removed');
  });

  it('runs an agent-like daemon in the node, reachable on a socket in a shadowed dir', async () => {
    await withNode({ extraShadows: ['/run/tortie-rig-test'] }, async (node) => {
      const sockDir = node.shadowDir('/run/tortie-rig-test');
      const server = `require('net').createServer((c) => c.end(require('fs').readlinkSync('/proc/self/ns/net') + '\\n')).listen('/run/tortie-rig-test/agent.sock')`;
      const agent = await node.startDaemon([process.execPath, '-e', server], { ready: async () => existsSync(join(sockDir, 'agent.sock')) });
      const client = `require('net').connect('/run/tortie-rig-test/agent.sock').on('data', (d) => process.stdout.write(d))`;
      const r = await node.run([process.execPath, '-e', client]);
      assert.equal(r.code, 0, r.stderr);
      const nodeNet = (await node.run(['readlink', '/proc/self/ns/net'])).stdout.trim();
      assert.equal(r.stdout.trim(), nodeNet, 'the agent runs in the node network namespace');
      assert.equal(existsSync('/run/tortie-rig-test'), false, 'the socket dir exists only in the node');
      await agent.stop();
    });
  });
});

describe('runtime rig: containerd (ctr run --cni) with Debian plugins', { skip: ctrSkip ?? false }, () => {
  it('ptp: ADD gives addresses, containers and node reach each other, removal runs DEL', async (t) => {
    await withNode({}, async (node) => {
      const work = join(node.dir, 'test');
      const { bin, log } = recorders(work);
      const ipam = join(work, 'ipam');
      const env = { TORTIE_RIG_MARK: 'ctr' };
      await withContainerd({ node, conflist: ptpConflist('rigptp', '10.231.0.0/24', ipam), binDirs: [bin], env }, async (rt) => {
        assert.equal(rt.hostNetns, node.name);
        const t0 = Date.now();
        const c1 = await rt.run('c1');
        await rt.run('c2');
        t.diagnostic(`ctr: two containers up in ${Date.now() - t0} ms`);
        assert.equal(c1.cniContainerId, `${rt.namespace}-c1`);
        const ip1 = await rt.ip('c1');
        const ip2 = await rt.ip('c2');
        assert.match(ip1, /^10\.231\.0\.\d+$/);
        assert.notEqual(ip1, ip2);
        assert.deepEqual(allocations(ipam, 'rigptp').sort(), [ip1, ip2].sort());
        const ping = await rt.exec('c1', ['ping', '-c', '1', '-W', '2', ip2]);
        assert.equal(ping.code, 0, ping.stdout + ping.stderr);
        assert.ok(await pingFromNode(node, ip1), 'node pings c1');

        const adds = readRecords(log).filter((r) => r.command === 'ADD' && r.plugin === 'ptp');
        assert.equal(adds.length, 2);
        const e = cniEnv(adds[0]!);
        t.diagnostic(`ctr ADD env: ${JSON.stringify(e)}`);
        assert.equal(e.CNI_CONTAINERID, `${rt.namespace}-c1`);
        assert.equal(e.CNI_NETNS, `/proc/${c1.pid}/ns/net`);
        assert.equal(e.CNI_IFNAME, 'eth0');
        assert.equal(e.CNI_PATH, '/opt/cni/bin:/usr/lib/cni');
        assert.equal(e.CNI_ARGS, '');
        assert.equal(adds[0]!.env.TORTIE_RIG_MARK, 'ctr', 'plugins inherit ctr environment');
        assert.equal(adds[0]!.config?.runtimeConfig, undefined, 'ctr sends no runtimeConfig');

        const vethsBefore = (await node.ip(['-o', 'link', 'show', 'type', 'veth'])).trim().split('\n').filter(Boolean).length;
        const rm = await rt.remove('c1');
        t.diagnostic(`ctr remove (kill + DEL + delete) took ${rm.ms} ms`);
        assert.doesNotMatch(rm.stderr, /network review/, 'DEL succeeded');
        assert.deepEqual(allocations(ipam, 'rigptp'), [ip2], 'host-local released c1 address');
        const vethsAfter = (await node.ip(['-o', 'link', 'show', 'type', 'veth'])).trim().split('\n').filter(Boolean).length;
        assert.equal(vethsAfter, vethsBefore - 1, 'host veth removed');
        const dels = readRecords(log).filter((r) => r.command === 'DEL' && r.plugin === 'ptp');
        assert.equal(dels.length, 1);
        assert.equal(dels[0]!.env.CNI_NETNS, '', 'ctr passes CNI_NETNS="" on DEL');
        assert.equal(dels[0]!.env.CNI_CONTAINERID, `${rt.namespace}-c1`);
        assert.ok(dels[0]!.config?.prevResult, 'DEL carries the cached prevResult');
        assert.deepEqual(rt.names(), ['c2']);
      });
      // close() removed c2 with DEL.
      assert.deepEqual(allocations(ipam, 'rigptp'), []);
      for (const p of WATCHED) assert.equal(existsSync(p), watchedBefore.get(p), `${p} unchanged on the machine`);
    });
  });

  it('bridge: two containers on one bridge ping each other and the node; a missing plugin fails ADD cleanly', async (t) => {
    await withNode({}, async (node) => {
      const ipam = join(node.dir, 'ipam');
      mkdirSync(ipam);
      const rt = await ContainerdRig.start({ node, conflist: bridgeConflist('rigbr', 'trtbr0', '10.231.1.0/24', ipam) });
      try {
        await rt.run('b1');
        await rt.run('b2');
        const ip1 = await rt.ip('b1');
        const ip2 = await rt.ip('b2');
        const ping = await rt.exec('b2', ['ping', '-c', '1', '-W', '2', ip1]);
        assert.equal(ping.code, 0, ping.stdout + ping.stderr);
        assert.ok(await pingFromNode(node, ip2));
        assert.match(await node.ip(['addr', 'show', 'dev', 'trtbr0']), /inet 10\.231\.1\.1\/24/);
        await rt.remove('b1');
        await rt.remove('b2');
        assert.deepEqual(allocations(ipam, 'rigbr'), []);

        rt.setConflist({ cniVersion: '1.0.0', name: 'broken', plugins: [{ type: 'no-such-plugin' }] });
        const err = await rt.run('bad').then(
          () => null,
          (e: Error) => e,
        );
        assert.match(String(err?.message), /no-such-plugin/);
        t.diagnostic(`ctr ADD failure: ${err?.message}`);
        assert.deepEqual(rt.names(), []);
      } finally {
        await rt.close();
      }
    });
  });
});

describe('runtime rig: podman (CNI backend) with Debian plugins', { skip: podSkip ?? false }, () => {
  it('ptp and bridge networks: ADD, connectivity, DEL', async (t) => {
    await withNode({}, async (node) => {
      const work = join(node.dir, 'test');
      const { bin, log } = recorders(work);
      const ipam = join(work, 'ipam');
      const env = { TORTIE_RIG_MARK: 'podman' };
      const nets = [ptpConflist('podptp', '10.231.2.0/24', ipam), bridgeConflist('podbr', 'trtbr1', '10.231.3.0/24', ipam)];
      await withPodman({ node, conflist: nets, binDirs: [bin], env }, async (rt) => {
        const t0 = Date.now();
        const p1 = await rt.run('p1');
        await rt.run('p2', { network: 'podbr' });
        await rt.run('p3', { network: 'podbr' });
        t.diagnostic(`podman: three containers up in ${Date.now() - t0} ms`);
        const ip1 = await rt.ip('p1');
        const ip2 = await rt.ip('p2');
        const ip3 = await rt.ip('p3');
        assert.match(ip1, /^10\.231\.2\.\d+$/);
        assert.match(ip2, /^10\.231\.3\.\d+$/);
        assert.equal((await rt.inspectNetworks('p1')).podptp?.IPAddress, ip1, 'podman saw the ADD result');
        const ping23 = await rt.exec('p2', ['ping', '-c', '1', '-W', '2', ip3]);
        assert.equal(ping23.code, 0, ping23.stdout + ping23.stderr);
        const ping13 = await rt.exec('p1', ['ping', '-c', '1', '-W', '2', ip3]);
        assert.equal(ping13.code, 0, 'ptp container reaches bridge container through the node');
        assert.ok(await pingFromNode(node, ip1));

        const sandbox = await rt.sandboxKey('p1');
        const add = readRecords(log).find((r) => r.command === 'ADD' && r.plugin === 'ptp');
        assert.ok(add);
        const e = cniEnv(add);
        t.diagnostic(`podman ADD env: ${JSON.stringify(e)}`);
        assert.equal(e.CNI_CONTAINERID, p1.cniContainerId);
        assert.match(e.CNI_CONTAINERID!, /^[0-9a-f]{64}$/);
        assert.equal(e.CNI_NETNS, sandbox);
        assert.match(sandbox, /^\/run\/netns\/netns-[0-9a-f-]+$/);
        assert.equal(e.CNI_IFNAME, 'eth0');
        assert.equal(e.CNI_PATH, '/opt/cni/bin:/usr/lib/cni');
        assert.equal(e.CNI_ARGS, 'IgnoreUnknown=1;K8S_POD_NAME=p1');
        assert.equal(add.env.TORTIE_RIG_MARK, 'podman');
        const versions = readRecords(log).filter((r) => r.command === 'VERSION');
        assert.ok(versions.length >= 1, 'podman probes VERSION');
        t.diagnostic(`podman VERSION env: ${JSON.stringify(cniEnv(versions[0]!))}`);
        // The netns file is in the node's shadow of /run/netns, not on the machine.
        const nsFile = join(node.shadowDir('/run/netns'), sandbox.split('/').pop()!);
        assert.ok(existsSync(nsFile));
        assert.equal(existsSync(sandbox), false);

        const rm = await rt.remove('p1');
        t.diagnostic(`podman rm (stop + DEL) took ${rm.ms} ms`);
        assert.equal(rm.code, 0, rm.stderr);
        assert.deepEqual(allocations(ipam, 'podptp'), [], 'host-local released p1 address');
        assert.equal(existsSync(nsFile), false, 'podman removed the netns');
        const del = readRecords(log).filter((r) => r.command === 'DEL' && r.plugin === 'ptp');
        assert.equal(del.length, 1);
        assert.equal(del[0]!.env.CNI_NETNS, sandbox, 'podman passes the netns path on DEL');
        assert.ok(del[0]!.config?.prevResult);
        t.diagnostic(`podman DEL got TORTIE_RIG_MARK=${del[0]!.env.TORTIE_RIG_MARK ?? '(unset)'} (DEL may come from conmon's cleanup process)`);
      });
      assert.deepEqual(allocations(ipam, 'podbr'), []);
      for (const p of WATCHED) assert.equal(existsSync(p), watchedBefore.get(p), `${p} unchanged on the machine`);
    });
  });

  it('a failing ADD (missing IPAM plugin) makes podman run fail and leaves no container', async (t) => {
    // A conflist whose main plugin is missing is dropped by podman's validation ("network not found");
    // a missing IPAM plugin passes validation and fails in ADD.
    const broken = { cniVersion: '1.0.0', name: 'broken', plugins: [{ type: 'ptp', ipam: { type: 'no-such-plugin' } }] };
    await withPodman({ conflist: broken }, async (rt) => {
      const err = await rt.run('bad').then(
        () => null,
        (e: Error) => e,
      );
      assert.match(String(err?.message), /no-such-plugin/);
      t.diagnostic(`podman ADD failure: ${err?.message}`);
      const ps = await rt.podman(['ps', '-a', '--format', '{{.Names}}']);
      assert.equal(ps.stdout.trim(), '');
    });
  });
});

describe('runtime rig: containerd and podman sharing one node', { skip: ctrSkip ?? podSkip ?? false }, () => {
  it('containers of both runtimes on the same bridge reach each other', async () => {
    await withNode({}, async (node) => {
      const ipam = join(node.dir, 'ipam');
      const net = bridgeConflist('shared', 'trtbr2', '10.231.4.0/24', ipam);
      await withContainerd({ node, conflist: net }, async (ctr) => {
        await withPodman({ node, conflist: net }, async (pod) => {
          await ctr.run('c');
          await pod.run('p');
          const ipc = await ctr.ip('c');
          const ipp = await pod.ip('p');
          assert.notEqual(ipc, ipp, 'one host-local store, distinct addresses');
          const r = await ctr.exec('c', ['ping', '-c', '1', '-W', '2', ipp]);
          assert.equal(r.code, 0, r.stdout + r.stderr);
          const r2 = await pod.exec('p', ['ping', '-c', '1', '-W', '2', ipc]);
          assert.equal(r2.code, 0, r2.stdout + r2.stderr);
        });
      });
      assert.deepEqual(allocations(ipam, 'shared'), []);
    });
  });
});

