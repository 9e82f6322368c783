// The orderings a kubelet and containerd produce, run against the real agent, the real plugin
// binary and real namespaces, many times with randomised timing:
//   A. sandbox re-created: ADD(old) → ADD(new, another netns) → DEL(old) — the live pod keeps eth0;
//   B. ADD with the plugin killed at a random moment (as a runtime gives up), then DEL;
//   C. DEL racing ADD for the same container;
//   D. ADD twice for the same container (a runtime's retry), CHECK after each;
//   E. ADD with the plugin killed and no DEL at all: the agent undoes the abandoned ADD by itself.
// After every step that leaves the node quiet, kernel state (host veths, host routes, pod
// interfaces), WorkloadEndpoints and IPAM must agree exactly: no veth, route or endpoint without its
// address allocated to its container, no allocation without its endpoint, no address twice.
// Runs TORTIE_SEQUENCE_RUNS runs (default 250) in batches of 5 concurrent pods; TORTIE_SEQUENCE_KINDS
// (e.g. "A,E") picks orderings.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../../../libcalico-go/lib/backend/api.js';
import { openEmbedded } from '../../../libcalico-go/lib/backend/embedded/embedded.js';
import { resourcePrefix } from '../../../libcalico-go/lib/backend/keys.js';
import { IPAM } from '../../../libcalico-go/lib/ipam/ipam.js';
import { formatIP, parseCIDR } from '../../../libcalico-go/lib/net/ip.js';
import { type ExecResult, execPlugin } from '../../../testing/cni-harness.js';
import { BIN, TestNode, inNs, ip } from '../../../testing/node-fixture.js';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : !existsSync(BIN('tortie')) ? `${BIN('tortie')} not built (npm run build)` : false;

const NETWORK = 'k8s-pod-network';
const RUNS = Number(process.env.TORTIE_SEQUENCE_RUNS ?? 250);
const BATCH = 5;

interface WepView {
  name: string;
  containerID: string;
  interfaceName: string;
  ipNetworks: string[];
}

const rand = (n: number) => Math.floor(Math.random() * n);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('kubelet orderings against the real agent and plugin', { skip }, () => {
  let dir: string;
  let store: Backend;
  let ipam: IPAM;
  let node: TestNode;
  let conf: Record<string, unknown>;
  /** containerId → its pod netns (to look inside). */
  const netnsOf = new Map<string, string>();

  /** Durations of ADDs that ran to their end: the kills are timed from them. */
  const addMs: number[] = [];
  const typicalAddMs = () => (addMs.length === 0 ? 150 : [...addMs].sort((a, b) => a - b)[Math.floor(addMs.length / 2)]!);

  const call = async (command: 'ADD' | 'DEL' | 'CHECK', containerId: string, pod: string, netns: string, extra: { killAfterMs?: number; prevResult?: unknown } = {}): Promise<ExecResult> => {
    const t0 = Date.now();
    const r = await callOnce(command, containerId, pod, netns, extra);
    if (command === 'ADD' && extra.killAfterMs === undefined && r.code === 0) addMs.push(Date.now() - t0);
    return r;
  };
  const callOnce = (command: 'ADD' | 'DEL' | 'CHECK', containerId: string, pod: string, netns: string, extra: { killAfterMs?: number; prevResult?: unknown } = {}): Promise<ExecResult> =>
    execPlugin(BIN('tortie'), {
      command,
      containerId,
      netns: netns === '' ? '' : `/run/netns/${netns}`,
      ifname: 'eth0',
      args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
      cniPath: [join(BIN('tortie'), '..')],
      stdinConfig: extra.prevResult ? { ...conf, prevResult: extra.prevResult } : conf,
      wrapper: ['/usr/sbin/ip', 'netns', 'exec', node.hostNs],
      timeoutMs: 60_000,
      ...(extra.killAfterMs !== undefined ? { onSpawn: (c) => void setTimeout(() => c.kill('SIGKILL'), extra.killAfterMs) } : {}),
    });

  const ok = (r: ExecResult, what: string) => assert.equal(r.code, 0, `${what}: ${r.stdout}${r.stderr}\n${node.agentLog.slice(-3000)}`);
  const addressOf = (r: ExecResult) => ((r.json as { ips: { address: string }[] }).ips[0]!.address);

  async function weps(): Promise<WepView[]> {
    const { items } = await store.list(resourcePrefix('WorkloadEndpoint'));
    return items.map((kv) => {
      const r = JSON.parse(kv.value) as { metadata: { name: string }; spec: Omit<WepView, 'name'> };
      return { name: r.metadata.name, ...r.spec };
    });
  }

  /** Allocated address → handle, for this network's handles. */
  async function allocations(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const b of await ipam.blocks(4)) {
      const cidr = parseCIDR(b.cidr)!;
      b.allocations.forEach((a, o) => {
        const h = a === null ? undefined : b.attributes[a]?.handle_id;
        if (h?.startsWith(`${NETWORK}.`)) out.set(formatIP({ version: 4, value: cidr.network + BigInt(o) }), h);
      });
    }
    return out;
  }

  /** Host-side cali veths of the node, and its /32 routes through them (address → device). */
  function hostKernel(): { veths: Set<string>; routes: Map<string, string> } {
    const links = JSON.parse(ip('-n', node.hostNs, '-j', 'link', 'show')) as { ifname: string }[];
    const routes = JSON.parse(ip('-n', node.hostNs, '-j', 'route', 'show')) as { dst: string; dev: string }[];
    return {
      veths: new Set(links.map((l) => l.ifname).filter((n) => n.startsWith('cali'))),
      routes: new Map(routes.filter((r) => r.dev?.startsWith('cali')).map((r) => [r.dst.replace(/\/32$/, ''), r.dev])),
    };
  }

  function podAddresses(netns: string): string[] {
    try {
      const out = execFileSync('/usr/sbin/ip', ['-n', netns, '-j', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const a = JSON.parse(out) as { addr_info: { family: string; local: string }[] }[];
      return (a[0]?.addr_info ?? []).filter((x) => x.family === 'inet').map((x) => x.local);
    } catch {
      return [];
    }
  }

  /** Kernel, endpoints and IPAM agree exactly (call when no request is in flight). */
  async function assertAgree(context: string): Promise<{ weps: WepView[] }> {
    const ws = await weps();
    const allocs = await allocations();
    const k = hostKernel();
    const problems: string[] = [];
    const seen = new Map<string, string>();
    for (const w of ws) {
      if (!k.veths.has(w.interfaceName)) problems.push(`endpoint ${w.name} names ${w.interfaceName}, which does not exist`);
      for (const net of w.ipNetworks) {
        const a = net.split('/')[0]!;
        if (seen.has(a)) problems.push(`address ${a} is on endpoints ${seen.get(a)} and ${w.name}`);
        seen.set(a, w.name);
        if (allocs.get(a) !== `${NETWORK}.${w.containerID}`) problems.push(`endpoint ${w.name} has ${a}, allocated to ${allocs.get(a) ?? 'nobody'}, not ${NETWORK}.${w.containerID}`);
        if (k.routes.get(a) !== w.interfaceName) problems.push(`route to ${a} goes to ${k.routes.get(a) ?? 'nothing'}, not ${w.interfaceName}`);
        const ns = netnsOf.get(w.containerID);
        if (!ns || !podAddresses(ns).includes(a)) problems.push(`pod of ${w.containerID} (${ns}) does not have ${a} on eth0`);
      }
    }
    for (const v of k.veths) if (!ws.some((w) => w.interfaceName === v)) problems.push(`host veth ${v} has no endpoint`);
    for (const [a, dev] of k.routes) if (!seen.has(a)) problems.push(`route ${a} dev ${dev} has no endpoint`);
    for (const [a, h] of allocs) if (!seen.has(a)) problems.push(`address ${a} allocated to ${h} has no endpoint`);
    assert.deepEqual(problems, [], `${context}:\n${problems.join('\n')}\n--- agent log (tail) ---\n${node.agentLog.slice(-4000)}`);
    return { weps: ws };
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-seq-'));
    const dsPath = join(dir, 'datastore.db');
    node = new TestNode({ nodeName: 'seq-node', datastoreEnv: { DATASTORE_TYPE: 'embedded', DATASTORE_PATH: dsPath } });
    node.setUp();
    await node.startAgent();
    store = openEmbedded(dsPath);
    ipam = new IPAM(store, { selects: () => true });
    conf = {
      cniVersion: '1.0.0',
      name: NETWORK,
      type: 'tortie',
      agent_socket: node.socket,
      ipam: { type: 'tortie-ipam', ipv4_pools: ['10.233.64.0/18'] },
      policy: { type: 'k8s' },
    };
  });
  after(async () => {
    await store?.close();
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A. The old sandbox's DEL after the new sandbox's ADD must leave the new one alone. */
  async function sandboxRecreated(i: number): Promise<void> {
    const pod = `web-${i}`;
    const [old, neu] = [`old-${i}`, `new-${i}`];
    const nsOld = node.makePodNs(`a${i}o`);
    const nsNew = node.makePodNs(`a${i}n`);
    netnsOf.set(old, nsOld).set(neu, nsNew);
    const a1 = await call('ADD', old, pod, nsOld);
    ok(a1, `A${i} ADD old`);
    await sleep(rand(20));
    const a2 = await call('ADD', neu, pod, nsNew);
    ok(a2, `A${i} ADD new`);
    const addr = addressOf(a2).split('/')[0]!;
    // Kubelet's DEL of the old sandbox: with its netns still there, or already removed.
    const oldGone = rand(2) === 0;
    if (oldGone) node.deletePodNs(nsOld);
    ok(await call('DEL', old, pod, oldGone ? '' : nsOld), `A${i} DEL old`);
    // The live pod still has its network: eth0 with its address, reachable from the host.
    assert.deepEqual(podAddresses(nsNew), [addr], `A${i}: new sandbox lost eth0`);
    inNs(node.hostNs, ['ping', '-c', '1', '-W', '2', addr]);
    ok(await call('CHECK', neu, pod, nsNew, { prevResult: a2.json }), `A${i} CHECK new`);
    const stale = await call('CHECK', old, pod, oldGone ? nsNew : nsOld, { prevResult: a1.json });
    assert.notEqual(stale.code, 0, `A${i}: CHECK of the replaced container must fail`);
    assert.match(stale.stdout, /belongs to container new-/);
    ok(await call('DEL', neu, pod, nsNew), `A${i} DEL new`);
    if (!oldGone) node.deletePodNs(nsOld);
    node.deletePodNs(nsNew);
  }

  /** B. ADD killed at a random moment, then DEL (what a runtime does after giving up). */
  async function addKilled(i: number): Promise<void> {
    const pod = `kill-${i}`;
    const id = `k-${i}`;
    const ns = node.makePodNs(`b${i}`);
    netnsOf.set(id, ns);
    const r = await call('ADD', id, pod, ns, { killAfterMs: rand(typicalAddMs() * 1.2) });
    ok(await call('DEL', id, pod, ns), `B${i} DEL after ${r.signal ? 'killed' : 'finished'} ADD`);
    assert.deepEqual(podAddresses(ns), [], `B${i}: eth0 left in the pod after DEL`);
    node.deletePodNs(ns);
  }

  /** C. DEL racing ADD for one container; a final DEL leaves nothing. */
  async function delRacesAdd(i: number): Promise<void> {
    const pod = `race-${i}`;
    const id = `r-${i}`;
    const ns = node.makePodNs(`c${i}`);
    netnsOf.set(id, ns);
    const addP = call('ADD', id, pod, ns);
    await sleep(rand(80));
    const [a, d] = await Promise.all([addP, call('DEL', id, pod, ns)]);
    ok(d, `C${i} racing DEL`);
    if (a.code === 0) {
      // Whichever ran second decides; if the ADD came last the pod is whole, and CHECK agrees.
      const addr = addressOf(a).split('/')[0]!;
      if (podAddresses(ns).length > 0) {
        assert.deepEqual(podAddresses(ns), [addr]);
        ok(await call('CHECK', id, pod, ns, { prevResult: a.json }), `C${i} CHECK`);
      }
    }
    ok(await call('DEL', id, pod, ns), `C${i} final DEL`);
    assert.deepEqual(podAddresses(ns), []);
    node.deletePodNs(ns);
  }

  /** D. ADD twice for the same container: the same address, one allocation; CHECK after each. */
  async function addTwice(i: number): Promise<void> {
    const pod = `twice-${i}`;
    const id = `t-${i}`;
    const ns = node.makePodNs(`d${i}`);
    netnsOf.set(id, ns);
    const a1 = await call('ADD', id, pod, ns);
    ok(a1, `D${i} ADD 1`);
    ok(await call('CHECK', id, pod, ns, { prevResult: a1.json }), `D${i} CHECK 1`);
    const a2 = await call('ADD', id, pod, ns);
    ok(a2, `D${i} ADD 2`);
    assert.equal(addressOf(a2), addressOf(a1), `D${i}: a repeated ADD must keep the container's address`);
    ok(await call('CHECK', id, pod, ns, { prevResult: a2.json }), `D${i} CHECK 2`);
    const mine = [...(await allocations()).values()].filter((h) => h === `${NETWORK}.${id}`);
    assert.equal(mine.length, 1, `D${i}: ${mine.length} allocations for one container`);
    ok(await call('DEL', id, pod, ns), `D${i} DEL`);
    node.deletePodNs(ns);
  }

  /**
   * E. The plugin killed while the agent works, and no DEL: the agent must undo by itself. A CHECK
   * for the container waits for its lock, so when it answers the ADD is finished or undone.
   */
  let undone = 0;
  async function addAbandoned(i: number): Promise<void> {
    const pod = `gone-${i}`;
    const id = `g-${i}`;
    const ns = node.makePodNs(`e${i}`);
    netnsOf.set(id, ns);
    // Killed somewhere in the second half of a typical ADD: mostly while the agent works on it.
    const t = typicalAddMs();
    const r = await call('ADD', id, pod, ns, { killAfterMs: Math.round(t * (0.5 + Math.random() * 0.5)) });
    await call('CHECK', id, pod, ns, { prevResult: { cniVersion: '1.0.0', ips: [] } });
    const mine = (await weps()).filter((w) => w.containerID === id);
    if (r.code === 0 || mine.length > 0) {
      // The ADD answered before the kill (or in the last instant): the pod is whole; the runtime DELs.
      ok(await call('DEL', id, pod, ns), `E${i} DEL`);
    } else {
      assert.deepEqual(podAddresses(ns), [], `E${i}: abandoned ADD left eth0 in the pod`);
      const held = [...(await allocations()).values()].filter((h) => h === `${NETWORK}.${id}`);
      assert.deepEqual(held, [], `E${i}: abandoned ADD left its address allocated`);
      if (/abandoned by its plugin/.test(node.agentLog) && node.agentLog.includes(`ADD of ${id} abandoned`)) undone++;
    }
    node.deletePodNs(ns);
  }

  it(`${RUNS} randomised runs of the five orderings, 5 pods at a time; kernel, endpoints and IPAM agree after each batch`, async (t) => {
    // TORTIE_SEQUENCE_KINDS=A,E runs only those orderings (to reproduce one).
    const only = (process.env.TORTIE_SEQUENCE_KINDS ?? 'A,B,C,D,E').split(',').map((k) => k.trim().toUpperCase());
    const kinds = [sandboxRecreated, addKilled, delRacesAdd, addTwice, addAbandoned].filter((_, j) => only.includes('ABCDE'[j]!));
    const done = new Map<string, number>();
    for (let start = 0; start < RUNS; start += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, RUNS - start) }, (_, j) => start + j);
      await Promise.all(
        batch.map(async (i) => {
          const k = kinds[i % kinds.length]!;
          await k(i);
          done.set(k.name, (done.get(k.name) ?? 0) + 1);
        }),
      );
      // Every run ended with its DEL: nothing of any of them may remain anywhere.
      const { weps: left } = await assertAgree(`after runs ${batch[0]}–${batch.at(-1)}`);
      assert.deepEqual(left.map((w) => w.name), [], 'endpoints left after every DEL');
    }
    assert.equal([...done.values()].reduce((a, b) => a + b, 0), RUNS);
    t.diagnostic(`abandoned ADDs undone by the agent itself: ${undone} of ${done.get('addAbandoned')}; typical ADD ${typicalAddMs()} ms`);
    // The kills must have hit the agent at work at least once, or E proved nothing.
    if ((done.get('addAbandoned') ?? 0) >= 10) assert.ok(undone > 0, `no abandoned ADD was undone by the agent in ${done.get('addAbandoned')} runs`);
  });

  it('mid-sequence agreement: a live pod and a replaced sandbox, before the old DEL', async () => {
    const nsOld = node.makePodNs('m-old');
    const nsNew = node.makePodNs('m-new');
    netnsOf.set('mid-old', nsOld).set('mid-new', nsNew);
    ok(await call('ADD', 'mid-old', 'mid', nsOld), 'ADD old');
    await assertAgree('one pod');
    ok(await call('ADD', 'mid-new', 'mid', nsNew), 'ADD new');
    // The old container's address is still allocated (until its DEL), and nothing else may differ.
    const allocs = await allocations();
    assert.equal([...allocs.values()].filter((h) => h === `${NETWORK}.mid-old`).length, 1, 'old handle kept until its DEL');
    ok(await call('DEL', 'mid-old', 'mid', nsOld), 'DEL old');
    const { weps: live } = await assertAgree('after the old DEL');
    assert.deepEqual(live.map((w) => w.containerID), ['mid-new']);
    ok(await call('DEL', 'mid-new', 'mid', nsNew), 'DEL new');
    await assertAgree('after both DELs');
    node.deletePodNs(nsOld);
    node.deletePodNs(nsNew);
  });
});
