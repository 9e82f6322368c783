// The collector's rules, one by one, with an injected clock: candidates, the grace period, all or
// none per handle, deleted nodes, tunnel addresses, empty blocks, GC disabled, metrics numbers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Allocation } from '../../../../libcalico-go/lib/ipam/allocations.js';
import { type BlockFacts, type GCFacts, IPAMGarbageCollector, type PodFacts, podAllocationProblem } from './ipam-gc.js';

const GRACE = 15 * 60_000;
const T0 = 1_000_000;

let seq = 100;
function podAlloc(ip: string, ns: string, pod: string, node: string, handle = `k8s-pod-network.${pod}`): Allocation {
  return { ip, handle, sequenceNumber: seq++, attrs: { node, namespace: ns, pod, timestamp: 'x' }, block: '10.0.0.0/26', blockOwner: node };
}

function facts(over: Partial<GCFacts> & { allocations: Allocation[] }): GCFacts {
  return {
    blocks: [],
    affinityHosts: [],
    nodes: new Set(['n1', 'n2']),
    pods: new Map(),
    poolOf: () => 'default-ipv4-ippool',
    ...over,
  };
}

const pods = (entries: [string, PodFacts][]) => new Map(entries);
const verdicts = (r: ReturnType<IPAMGarbageCollector['sync']>) => r.classified.map((c) => `${c.allocation.ip}=${c.verdict}`);

describe('IPAM garbage collector: allocation rules', () => {
  it('a live pod that carries its address is valid, never a candidate, however long', () => {
    const gc = new IPAMGarbageCollector();
    const a = podAlloc('10.0.0.1', 'ns', 'web', 'n1');
    const f = facts({ allocations: [a], pods: pods([['ns/web', { node: 'n1', ips: ['10.0.0.1'] }]]) });
    for (const t of [T0, T0 + GRACE, T0 + 10 * GRACE]) {
      const r = gc.sync(f, t, GRACE);
      assert.deepEqual(verdicts(r), ['10.0.0.1=valid']);
      assert.deepEqual(r.actions.releaseHandles, []);
    }
  });

  it('a pod that is gone: candidate at once, released only once the grace period has passed', () => {
    const gc = new IPAMGarbageCollector();
    const a = podAlloc('10.0.0.2', 'ns', 'gone', 'n1');
    const f = facts({ allocations: [a] });
    let r = gc.sync(f, T0, GRACE);
    assert.deepEqual(verdicts(r), ['10.0.0.2=candidate']);
    assert.match(r.classified[0].reason!, /pod ns\/gone does not exist/);
    assert.deepEqual(r.actions.releaseHandles, []);
    r = gc.sync(f, T0 + GRACE - 1, GRACE);
    assert.deepEqual(verdicts(r), ['10.0.0.2=candidate'], 'one millisecond before the grace period ends: still only a candidate');
    assert.deepEqual(r.actions.releaseHandles, []);
    r = gc.sync(f, T0 + GRACE, GRACE);
    assert.deepEqual(verdicts(r), ['10.0.0.2=leak']);
    assert.deepEqual(r.actions.releaseHandles.map((h) => h.handle), ['k8s-pod-network.gone']);
  });

  it('a pod on another node, or without the address, is a candidate', () => {
    const gc = new IPAMGarbageCollector();
    const moved = podAlloc('10.0.0.3', 'ns', 'moved', 'n1');
    const other = podAlloc('10.0.0.4', 'ns', 'other-ip', 'n1');
    const r = gc.sync(
      facts({
        allocations: [moved, other],
        pods: pods([
          ['ns/moved', { node: 'n2', ips: ['10.0.0.3'] }],
          ['ns/other-ip', { node: 'n1', ips: ['10.0.0.9'] }],
        ]),
      }),
      T0,
      GRACE,
    );
    assert.deepEqual(verdicts(r), ['10.0.0.3=candidate', '10.0.0.4=candidate']);
    assert.match(r.classified[0].reason!, /is on node "n2", not "n1"/);
    assert.match(r.classified[1].reason!, /does not have address 10.0.0.4/);
  });

  it('a CNI ADD that allocated but has not patched the pod yet is protected by the grace period, and a valid observation resets it', () => {
    // ADD: the block names pod ns/new (allocation written), the pod has no address yet.
    const gc = new IPAMGarbageCollector();
    const a = podAlloc('10.0.0.5', 'ns', 'new', 'n1');
    const noIP = facts({ allocations: [a], pods: pods([['ns/new', { node: 'n1', ips: [] }]]) });
    assert.deepEqual(verdicts(gc.sync(noIP, T0, GRACE)), ['10.0.0.5=candidate']);
    assert.deepEqual(gc.sync(noIP, T0 + GRACE / 2, GRACE).actions.releaseHandles, []);
    // The ADD patches the pod: valid; the candidacy is forgotten.
    const patched = facts({ allocations: [a], pods: pods([['ns/new', { node: 'n1', ips: ['10.0.0.5'] }]]) });
    assert.deepEqual(verdicts(gc.sync(patched, T0 + GRACE / 2 + 1, GRACE)), ['10.0.0.5=valid']);
    // Seen without the address again later (e.g. a status glitch): a new candidacy, the clock restarts.
    assert.deepEqual(verdicts(gc.sync(noIP, T0 + GRACE + 1, GRACE)), ['10.0.0.5=candidate']);
    assert.deepEqual(gc.sync(noIP, T0 + 2 * GRACE, GRACE).actions.releaseHandles, [], 'not before a full grace period from the new candidacy');
    assert.equal(gc.sync(noIP, T0 + 2 * GRACE + 1, GRACE).actions.releaseHandles.length, 1);
  });

  it('a re-allocated address (new sequence number) is a new allocation: its candidacy starts over', () => {
    const gc = new IPAMGarbageCollector();
    const old = podAlloc('10.0.0.6', 'ns', 'a', 'n1');
    gc.sync(facts({ allocations: [old] }), T0, GRACE);
    const reused = { ...podAlloc('10.0.0.6', 'ns', 'a', 'n1'), handle: old.handle };
    const r = gc.sync(facts({ allocations: [reused] }), T0 + GRACE, GRACE);
    assert.deepEqual(verdicts(r), ['10.0.0.6=candidate']);
  });

  it('all or none per handle: a dual-stack handle with one address still on the pod releases nothing', () => {
    const gc = new IPAMGarbageCollector();
    const v4 = podAlloc('10.0.0.7', 'ns', 'dual', 'n1', 'h-dual');
    const v6 = { ...podAlloc('fd00::7', 'ns', 'dual', 'n1', 'h-dual'), block: 'fd00::/122' };
    const f = facts({ allocations: [v4, v6], pods: pods([['ns/dual', { node: 'n1', ips: ['fd00::7'] }]]) });
    gc.sync(f, T0, GRACE);
    const r = gc.sync(f, T0 + 2 * GRACE, GRACE);
    assert.deepEqual(verdicts(r), ['10.0.0.7=leak', 'fd00::7=valid']);
    assert.deepEqual(r.actions.releaseHandles, [], 'one valid allocation keeps the whole handle');
    // Both gone: both released together.
    const g2 = new IPAMGarbageCollector();
    const f2 = facts({ allocations: [v4, v6] });
    g2.sync(f2, T0, GRACE);
    const r2 = g2.sync(f2, T0 + GRACE, GRACE);
    assert.deepEqual(r2.actions.releaseHandles.map((h) => [h.handle, h.allocations.map((a) => a.ip)]), [['h-dual', ['10.0.0.7', 'fd00::7']]]);
  });

  it("a deleted node's allocations (pods and tunnel) are confirmed leaks at once; its hosts' affinities go", () => {
    const gc = new IPAMGarbageCollector();
    const pod = podAlloc('10.0.1.1', 'ns', 'p', 'dead');
    const tunnel: Allocation = { ip: '10.0.1.0', handle: 'vxlan-tunnel-addr-dead', sequenceNumber: 1, attrs: { node: 'dead', type: 'vxlanTunnelAddress' }, block: '10.0.1.0/26', blockOwner: 'dead' };
    const block: BlockFacts = { cidr: '10.0.1.0/26', host: 'dead', inUse: 2, pool: 'default-ipv4-ippool' };
    const r = gc.sync(
      facts({ allocations: [pod, tunnel], blocks: [block], affinityHosts: ['dead', 'n1', 'gone-without-blocks'], pods: pods([['ns/p', { node: 'dead', ips: ['10.0.1.1'] }]]) }),
      T0,
      GRACE,
    );
    assert.deepEqual(verdicts(r), ['10.0.1.1=leak', '10.0.1.0=leak']);
    assert.deepEqual(r.actions.releaseHandles.map((h) => h.handle).sort(), ['k8s-pod-network.p', 'vxlan-tunnel-addr-dead']);
    assert.deepEqual(r.actions.releaseHosts, ['dead', 'gone-without-blocks']);
  });

  it("a live node's tunnel address is valid; Windows-reserved and non-pod allocations are kept", () => {
    const gc = new IPAMGarbageCollector();
    const tunnel: Allocation = { ip: '10.0.0.0', handle: 'ipip-tunnel-addr-n1', attrs: { node: 'n1', type: 'ipipTunnelAddress' }, block: '10.0.0.0/26', blockOwner: 'n1' };
    const win: Allocation = { ip: '10.0.0.60', handle: 'windows-reserved-ipam-handle', attrs: { node: 'gone' }, block: '10.0.0.0/26', blockOwner: 'gone' };
    const other: Allocation = { ip: '10.0.0.61', handle: 'my-app', attrs: { node: 'n1' }, block: '10.0.0.0/26', blockOwner: 'n1' };
    const r = gc.sync(facts({ allocations: [tunnel, win, other] }), T0 + 100 * GRACE, GRACE);
    assert.deepEqual(verdicts(r), ['10.0.0.0=valid', '10.0.0.60=kept', '10.0.0.61=kept']);
    assert.deepEqual(r.actions.releaseHandles, []);
  });

  it('leakGracePeriod 0 disables the GC of live nodes (candidates, never released) but not deleted-node cleanup', () => {
    const gc = new IPAMGarbageCollector();
    const gone = podAlloc('10.0.0.8', 'ns', 'gone', 'n1');
    const dead = podAlloc('10.0.2.1', 'ns', 'x', 'dead');
    const f = facts({ allocations: [gone, dead] });
    gc.sync(f, T0, 0);
    const r = gc.sync(f, T0 + 100 * GRACE, 0);
    assert.deepEqual(verdicts(r), ['10.0.0.8=candidate', '10.0.2.1=leak']);
    assert.match(r.classified[0].reason!, /garbage collection disabled/);
    assert.deepEqual(r.actions.releaseHandles.map((h) => h.handle), ['k8s-pod-network.x']);
  });
});

describe('IPAM garbage collector: empty blocks', () => {
  const b = (cidr: string, host: string, inUse = 0): BlockFacts => ({ cidr, host, inUse, pool: 'p' });

  it('an empty block loses its affinity after two observations spanning the grace period, never the last one of a node', () => {
    const gc = new IPAMGarbageCollector();
    const blocks = [b('10.0.0.0/26', 'n1', 3), b('10.0.0.64/26', 'n1'), b('10.0.0.128/26', 'n2')];
    assert.deepEqual(gc.sync(facts({ allocations: [], blocks }), T0, GRACE).actions.releaseBlockAffinities, [], 'first observation');
    assert.deepEqual(gc.sync(facts({ allocations: [], blocks }), T0 + GRACE - 1, GRACE).actions.releaseBlockAffinities, [], 'inside the grace period');
    const r = gc.sync(facts({ allocations: [], blocks }), T0 + GRACE, GRACE);
    assert.deepEqual(r.actions.releaseBlockAffinities, [{ host: 'n1', cidr: '10.0.0.64/26' }], "n2's only block stays");
  });

  it('a block used again in between starts over', () => {
    const gc = new IPAMGarbageCollector();
    gc.sync(facts({ allocations: [], blocks: [b('10.0.0.0/26', 'n1', 1), b('10.0.0.64/26', 'n1')] }), T0, GRACE);
    gc.sync(facts({ allocations: [], blocks: [b('10.0.0.0/26', 'n1', 1), b('10.0.0.64/26', 'n1', 1)] }), T0 + 1, GRACE);
    const r = gc.sync(facts({ allocations: [], blocks: [b('10.0.0.0/26', 'n1', 1), b('10.0.0.64/26', 'n1')] }), T0 + GRACE, GRACE);
    assert.deepEqual(r.actions.releaseBlockAffinities, []);
  });

  it('with leakGracePeriod 0 empty blocks keep their affinity', () => {
    const gc = new IPAMGarbageCollector();
    const blocks = [b('10.0.0.0/26', 'n1', 1), b('10.0.0.64/26', 'n1')];
    gc.sync(facts({ allocations: [], blocks }), T0, 0);
    assert.deepEqual(gc.sync(facts({ allocations: [], blocks }), T0 + 100 * GRACE, 0).actions.releaseBlockAffinities, []);
  });
});

describe('IPAM garbage collector: numbers for the metrics', () => {
  it('counts in use, borrowed, candidates and blocks per pool and node', () => {
    const gc = new IPAMGarbageCollector();
    const live = podAlloc('10.0.0.1', 'ns', 'live', 'n1');
    const gone = podAlloc('10.0.0.2', 'ns', 'gone', 'n1');
    const borrowed = { ...podAlloc('10.0.0.3', 'ns', 'b', 'n2'), blockOwner: 'n1' };
    const outside = podAlloc('192.168.9.9', 'ns', 'o', 'n1');
    const r = gc.sync(
      facts({
        allocations: [live, gone, borrowed, outside],
        blocks: [{ cidr: '10.0.0.0/26', host: 'n1', inUse: 3, pool: 'pool-a' }],
        pods: pods([
          ['ns/live', { node: 'n1', ips: ['10.0.0.1'] }],
          ['ns/b', { node: 'n2', ips: ['10.0.0.3'] }],
          ['ns/o', { node: 'n1', ips: ['192.168.9.9'] }],
        ]),
        poolOf: (ip) => (ip.startsWith('10.') ? 'pool-a' : null),
      }),
      T0,
      GRACE,
    );
    const rows = [...r.stats.perPoolNode.values()].sort((x, y) => `${x.pool}${x.node}`.localeCompare(`${y.pool}${y.node}`));
    assert.deepEqual(rows, [
      { pool: 'no_ippool', node: 'n1', inUse: 1, borrowed: 0, candidates: 0, blocks: 0 },
      { pool: 'pool-a', node: 'n1', inUse: 2, borrowed: 0, candidates: 1, blocks: 1 },
      { pool: 'pool-a', node: 'n2', inUse: 1, borrowed: 1, candidates: 0, blocks: 0 },
    ]);
  });
});

describe('podAllocationProblem', () => {
  it('an allocation without pod attributes is assumed valid', () => {
    const a: Allocation = { ip: '10.0.0.1', handle: 'h', attrs: { node: 'n1' }, block: '10.0.0.0/26', blockOwner: 'n1' };
    assert.equal(podAllocationProblem(a, undefined), null);
  });
});
