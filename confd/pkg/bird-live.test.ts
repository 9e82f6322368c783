// Live BIRDs in network namespaces, each running the configuration rendered for its node:
//
// 1. Mesh: playcekube-master01 (10.0.0.11) and playcekube-worker02 (10.0.0.15) of the seed, joined
//    by a veth. The mesh session comes up (with the mesh password, TCP-MD5), each learns the other's
//    block, an address borrowed from another node's block is advertised while one inside the own
//    block is not, and only the unencapsulated pool's route is programmed into the kernel.
// 2. Route reflector across subnets: master01 as RR (10.0.1.1 and a second leg 10.0.2.1), clients
//    master02 (10.0.1.2) and worker02 (10.0.2.2) in different subnets, mesh off. Both clients reach
//    Established with the RR; worker02 gets master02's block reflected, its BGP next hop 10.0.1.2
//    resolved through a kernel route (learned for that purpose) and programmed via 10.0.2.1.
// 3. BGP passwords from a secrets directory (TORTIE_BGP_SECRETS_DIR layout): master01 has two
//    BGPPeers, one whose secret file exists (worker02, TCP-MD5) and one whose secret is missing. The
//    second is left out with its reason; BIRD runs and the first session is Established.
//
// Needs root, `ip` and BIRD 2; skipped otherwise. Touches nothing outside the namespaces it
// creates (named tortie-t<random>-…) and a temporary directory; both are removed afterwards, even
// on failure, and the BIRDs it started are stopped by PID.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';

import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';
import { birdArgs, renderBirdConfig } from './bird-config.js';
import { buildBgpModel, type BuildBgpModelInput } from './model.js';
import { parseProtocolName } from './names.js';
import { fileSecretResolver } from './secrets.js';
import { SEED_BLOCKS, res, seedBgpConfiguration, seedNodes, seedPool } from '../../testing/seed-fixture.js';

const BIRD = '/usr/sbin/bird';
const BIRDC = '/usr/sbin/birdc';

function hasIp(): boolean {
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skip =
  process.getuid?.() !== 0
    ? 'needs root (network namespaces)'
    : !existsSync(BIRD) || !existsSync(BIRDC)
      ? `${BIRD} or ${BIRDC} is not installed (apt-get install bird2)`
      : !hasIp()
        ? 'ip is not installed (apt-get install iproute2)'
        : false;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function birdc(sock: string, ...cmd: string[]): string {
  return execFileSync(BIRDC, ['-s', sock, ...cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 30000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Namespaces, BIRDs and a temp dir owned by one test; `close()` removes all of it. */
class Lab {
  readonly tag = `tortie-t${randomBytes(3).toString('hex')}`;
  readonly dir = mkdtempSync(join(tmpdir(), 'tortie-confd-live-'));
  private readonly namespaces: string[] = [];
  private readonly birds: { child: ChildProcess; node: string }[] = [];

  ns(suffix: string): string {
    const name = `${this.tag}-${suffix}`;
    ip('netns', 'add', name);
    this.namespaces.push(name);
    ip('-n', name, 'link', 'set', 'lo', 'up');
    return name;
  }

  /** A veth created inside `a` with its peer moved straight into `b`: the root namespace is never touched. */
  link(a: string, ifA: string, addrA: string, b: string, ifB: string, addrB: string): void {
    ip('-n', a, 'link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', b);
    ip('-n', a, 'addr', 'add', addrA, 'dev', ifA);
    ip('-n', b, 'addr', 'add', addrB, 'dev', ifB);
    ip('-n', a, 'link', 'set', ifA, 'up');
    ip('-n', b, 'link', 'set', ifB, 'up');
  }

  /** Renders the node's configuration, starts BIRD on it inside `ns`; returns the control socket. */
  startBird(ns: string, input: BuildBgpModelInput): string {
    const node = input.thisNode;
    const paths = { socketDir: this.dir, socketName: `${node}.ctl` };
    const model = buildBgpModel(input);
    const file = join(this.dir, `${node}.conf`);
    writeFileSync(file, renderBirdConfig(model, paths));
    const log = openSync(join(this.dir, `${node}.log`), 'w');
    // `ip netns exec` execs BIRD in place, so the child's PID is BIRD's.
    const child = spawn('ip', ['netns', 'exec', ns, BIRD, ...birdArgs(file, paths)], { stdio: ['ignore', log, log] });
    closeSync(log);
    this.birds.push({ child, node });
    return join(this.dir, `${node}.ctl`);
  }

  logs(): string {
    return this.birds
      .map(({ node }) => {
        let text = '';
        try {
          text = readFileSync(join(this.dir, `${node}.log`), 'utf8');
        } catch {
          /* none */
        }
        return `--- ${node}\n${text}`;
      })
      .join('\n');
  }

  async close(): Promise<void> {
    for (const { child } of this.birds) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        const done = new Promise((r) => child.once('exit', r));
        process.kill(child.pid, 'SIGTERM');
        await Promise.race([done, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
      }
    }
    for (const ns of this.namespaces) {
      try {
        ip('netns', 'del', ns);
      } catch {
        /* already gone */
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const labs: Lab[] = [];
after(async () => {
  for (const lab of labs) await lab.close();
});

async function established(sock: string, peer: string): Promise<string> {
  return waitFor(`${peer} Established`, () =>
    birdc(sock, 'show', 'protocols')
      .split('\n')
      .find((l) => l.startsWith(peer + ' ') && /\bEstablished\b/.test(l)),
  );
}

async function withLogs(lab: Lab, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    (e as Error).message += `\n${lab.logs()}`;
    throw e;
  }
}

const SECRETS: Record<string, Record<string, string>> = { 'bgp-secrets': { 'mesh-password': 'tortie-mesh-secret' } };
const flatPool = (): Resource => res('IPPool', 'flat-pool', { cidr: '10.240.0.0/16', ipipMode: 'Never', vxlanMode: 'Never' });

test('mesh: two seed nodes in namespaces reach Established and exchange blocks', { skip, timeout: 90000 }, async () => {
  const lab = new Lab();
  labs.push(lab);
  const a = lab.ns('a');
  const b = lab.ns('b');
  lab.link(a, 'eth0', '10.0.0.11/16', b, 'eth0', '10.0.0.15/16');
  // On worker02: a workload interface with an address borrowed from master02's block and one from
  // its own block, and an alien blackhole route (no interface) inside a pool, which must not be learned.
  ip('-n', b, 'link', 'add', 'calitest0', 'type', 'veth', 'peer', 'name', 'podside0');
  ip('-n', b, 'link', 'set', 'podside0', 'up');
  ip('-n', b, 'link', 'set', 'calitest0', 'up');
  ip('-n', b, 'route', 'add', '10.233.113.7/32', 'dev', 'calitest0');
  ip('-n', b, 'route', 'add', '10.233.106.9/32', 'dev', 'calitest0');
  ip('-n', b, 'route', 'add', 'blackhole', '10.233.120.0/24');

  const input = (node: string, extraBlocks: string[]): BuildBgpModelInput => ({
    thisNode: node,
    nodes: seedNodes(),
    bgpConfigurations: [
      res('BGPConfiguration', 'default', {
        ...seedBgpConfiguration().spec,
        nodeMeshPassword: { secretKeyRef: { name: 'bgp-secrets', key: 'mesh-password' } },
      }),
    ],
    ipPools: [seedPool(), flatPool()],
    affineBlocks: [...SEED_BLOCKS[node], ...extraBlocks],
    secret: (n, k) => SECRETS[n]?.[k],
  });
  const sockA = lab.startBird(a, input('playcekube-master01', []));
  const sockB = lab.startBird(b, input('playcekube-worker02', ['10.240.5.0/26']));

  await withLogs(lab, async () => {
    for (const [sock, peer, addr] of [
      [sockA, 'Mesh_10_0_0_15', '10.0.0.15'],
      [sockB, 'Mesh_10_0_0_11', '10.0.0.11'],
    ]) {
      const line = await established(sock, peer);
      assert.match(line, /^Mesh_10_0_0_1[15] +BGP +--- +up /);
      assert.deepEqual(parseProtocolName(line.split(/\s+/)[0]), { type: 'mesh', peerTypeLabel: 'node-to-node mesh', family: 4, address: addr });
    }
    // The other three seed nodes are absent: their sessions exist but are not up.
    assert.match(birdc(sockA, 'show', 'protocols'), /^Mesh_10_0_0_12 +BGP +--- +start /m);
    // master01 sees worker02's blocks and the borrowed address, not the /32 inside worker02's block.
    const routesA = await waitFor('routes from worker02', () => {
      const r = birdc(sockA, 'show', 'route');
      return /10\.233\.106\.0\/24 +unicast/.test(r) && /10\.233\.113\.7\/32/.test(r) && /10\.240\.5\.0\/26/.test(r) ? r : undefined;
    });
    assert.match(routesA, /10\.233\.106\.0\/24 +unicast \[Mesh_10_0_0_15 [^\]]*\] \* \(100\) \[i\]\n\s+via 10\.0\.0\.15 on eth0/);
    assert.doesNotMatch(routesA, /10\.233\.106\.9/);
    assert.doesNotMatch(routesA, /10\.233\.120\.0/);
    // worker02 sees master01's block and keeps its own as a blackhole.
    const routesB = await waitFor('routes from master01', () => {
      const r = birdc(sockB, 'show', 'route');
      return /10\.233\.77\.0\/24 +unicast \[Mesh_10_0_0_11/.test(r) ? r : undefined;
    });
    assert.match(routesB, /10\.233\.106\.0\/24 +blackhole \[static4/);
    assert.doesNotMatch(routesB, /10\.233\.120\.0/, 'blackhole inside a pool not learned');
    // Kernel of master01: the unencapsulated pool's block is programmed; the IPIP pool's is left to
    // the agent, and no blackhole is installed.
    const kernelA = await waitFor('kernel route 10.240.5.0/26', () => {
      const r = ip('-n', a, 'route', 'show');
      return /10\.240\.5\.0\/26 via 10\.0\.0\.15 dev eth0 proto bird/.test(r) ? r : undefined;
    });
    assert.doesNotMatch(kernelA, /10\.233\.106\.0\/24/);
    assert.doesNotMatch(kernelA, /blackhole 10\.233\.77\.0\/24/);
  });
});

test('route reflector across two subnets: clients Established, routes reflected and resolved', { skip, timeout: 90000 }, async () => {
  const lab = new Lab();
  labs.push(lab);
  const rr = lab.ns('rr');
  const a = lab.ns('a');
  const b = lab.ns('b');
  lab.link(rr, 'eth-a', '10.0.1.1/24', a, 'eth0', '10.0.1.2/24');
  lab.link(rr, 'eth-b', '10.0.2.1/24', b, 'eth0', '10.0.2.2/24');
  // Each client reaches the other subnet through the RR's namespace (ordinary kernel routes, as a
  // DHCP default route would be).
  ip('-n', b, 'route', 'add', '10.0.1.0/24', 'via', '10.0.2.1');
  ip('-n', a, 'route', 'add', '10.0.2.0/24', 'via', '10.0.1.1');

  const nodes = [
    res('Node', 'playcekube-master01', { bgp: { ipv4Address: '10.0.1.1/24', routeReflectorClusterID: '224.0.0.1' } }, { 'route-reflector': 'true' }),
    res('Node', 'playcekube-master02', { bgp: { ipv4Address: '10.0.1.2/24' } }),
    res('Node', 'playcekube-worker02', { bgp: { ipv4Address: '10.0.2.2/24' } }),
  ];
  const blocks: Record<string, string[]> = {
    'playcekube-master01': [],
    'playcekube-master02': ['10.240.2.0/26'],
    'playcekube-worker02': ['10.240.5.0/26'],
  };
  const input = (node: string): BuildBgpModelInput => ({
    thisNode: node,
    nodes,
    bgpConfigurations: [res('BGPConfiguration', 'default', { nodeToNodeMeshEnabled: false, asNumber: 64512 })],
    bgpPeers: [res('BGPPeer', 'peer-with-route-reflectors', { nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" })],
    ipPools: [flatPool()],
    affineBlocks: blocks[node],
  });
  const sockRR = lab.startBird(rr, input('playcekube-master01'));
  const sockA = lab.startBird(a, input('playcekube-master02'));
  const sockB = lab.startBird(b, input('playcekube-worker02'));

  await withLogs(lab, async () => {
    await established(sockRR, 'Node_10_0_1_2');
    await established(sockRR, 'Node_10_0_2_2');
    await established(sockA, 'Node_10_0_1_1');
    await established(sockB, 'Node_10_0_1_1');
    assert.match(birdc(sockRR, 'show', 'protocols', 'all', 'Node_10_0_2_2'), /Session: +internal multihop route-reflector/);
    // worker02 learns master02's block from the RR, next hop master02 (not the RR), resolved
    // recursively through the kernel route via 10.0.2.1.
    const all = await waitFor('reflected route on worker02', () => {
      const r = birdc(sockB, 'show', 'route', 'all', '10.240.2.0/26');
      return /10\.240\.2\.0\/26 +unicast \[Node_10_0_1_1 /.test(r) ? r : undefined;
    });
    assert.match(all, /via 10\.0\.2\.1 on eth0/);
    assert.match(all, /BGP\.next_hop: 10\.0\.1\.2/);
    assert.match(all, /BGP\.originator_id: 10\.0\.1\.2/);
    assert.match(all, /BGP\.cluster_list: 224\.0\.0\.1/);
    await waitFor('kernel route on worker02', () =>
      /10\.240\.2\.0\/26 via 10\.0\.2\.1 dev eth0 proto bird/.test(ip('-n', b, 'route', 'show')) ? true : undefined,
    );
    // And the other way round.
    await waitFor('reflected route on master02', () =>
      /10\.240\.5\.0\/26 +unicast \[Node_10_0_1_1 /.test(birdc(sockA, 'show', 'route')) ? true : undefined,
    );
    // The kernel route that resolves the next hop is learned, never advertised.
    assert.doesNotMatch(birdc(sockRR, 'show', 'route'), /10\.0\.1\.0\/24 +unicast \[Node_/);
  });
});

test('passwords from a secrets directory: a peer whose secret is missing is left out, the other one is Established', { skip, timeout: 90000 }, async () => {
  const lab = new Lab();
  labs.push(lab);
  const a = lab.ns('a');
  const b = lab.ns('b');
  lab.link(a, 'eth0', '10.0.0.11/16', b, 'eth0', '10.0.0.15/16');
  // A mounted Kubernetes Secret "bgp-secrets" with one key; "peer-c" is not there.
  const secretsDir = join(lab.dir, 'secrets');
  mkdirSync(join(secretsDir, 'bgp-secrets'), { recursive: true });
  writeFileSync(join(secretsDir, 'bgp-secrets', 'peer-b'), 'md5-from-a-file');
  const ref = (key: string) => ({ secretKeyRef: { name: 'bgp-secrets', key } });
  const input = (node: string): BuildBgpModelInput => ({
    thisNode: node,
    nodes: seedNodes(),
    bgpConfigurations: [res('BGPConfiguration', 'default', { nodeToNodeMeshEnabled: false, asNumber: 64512 })],
    bgpPeers: [
      res('BGPPeer', 'a-to-b', { node: 'playcekube-master01', peerIP: '10.0.0.15', asNumber: 64512, password: ref('peer-b') }),
      res('BGPPeer', 'a-to-c', { node: 'playcekube-master01', peerIP: '10.0.0.99', asNumber: 65099, password: ref('peer-c') }),
      res('BGPPeer', 'b-to-a', { node: 'playcekube-worker02', peerIP: '10.0.0.11', asNumber: 64512, password: ref('peer-b') }),
    ],
    ipPools: [flatPool()],
    affineBlocks: node === 'playcekube-master01' ? ['10.240.1.0/26'] : ['10.240.5.0/26'],
    secret: fileSecretResolver(secretsDir),
  });
  const modelA = buildBgpModel(input('playcekube-master01'));
  assert.deepEqual(modelA.peers.map((p) => p.name), ['Node_10_0_0_15']);
  assert.deepEqual(modelA.problems, [
    `BGPPeer a-to-c: password secret "bgp-secrets" key "peer-c" could not be resolved (no file ${join(secretsDir, 'bgp-secrets', 'peer-c')} ` +
      `(TORTIE_BGP_SECRETS_DIR=${secretsDir})); its peerings are left out of the BIRD configuration (the other peers are not affected)`,
  ]);
  assert.match(renderBirdConfig(modelA, { socketDir: lab.dir }), /password "md5-from-a-file";/);
  const sockA = lab.startBird(a, input('playcekube-master01'));
  const sockB = lab.startBird(b, input('playcekube-worker02'));

  await withLogs(lab, async () => {
    await established(sockA, 'Node_10_0_0_15');
    await established(sockB, 'Node_10_0_0_11');
    assert.doesNotMatch(birdc(sockA, 'show', 'protocols'), /10_0_0_99/);
    await waitFor('route from worker02', () => (/10\.240\.5\.0\/26 +unicast \[Node_10_0_0_15/.test(birdc(sockA, 'show', 'route')) ? true : undefined));
  });
});
