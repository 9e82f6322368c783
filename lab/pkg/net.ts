// Building the underlay: one LAN namespace holding a bridge per subnet, a router namespace on every
// subnet (the nodes' default gateway; it forwards between the two subnets of `crosssubnet`), an
// optional etcd namespace, and one "host" namespace per node with eth0 on its subnet's bridge.
// Every command runs with `ip -n <lab namespace>`; nothing is linked to the root namespace.
import type { LabPlan } from './topology.js';
import { IP, ipBatch, run } from './sys.js';

/** `ip -batch` lines creating the namespaces (run in the root mount namespace only). */
export function namespaceLines(names: readonly string[]): string[] {
  return names.map((n) => `netns add ${n}`);
}

/** Lines run in the LAN namespace: bridges and every veth pair (peers moved into their namespaces). */
export function lanLines(plan: LabPlan): string[] {
  const lines = ['link set lo up'];
  for (const s of plan.subnets) {
    lines.push(`link add ${s.bridge} type bridge`, `link set ${s.bridge} up`);
    lines.push(`link add r${s.index} type veth peer name eth${s.index} netns ${plan.routerNs}`);
    lines.push(`link set r${s.index} master ${s.bridge}`, `link set r${s.index} up`);
  }
  if (plan.etcdNs) {
    lines.push(`link add e0 type veth peer name eth0 netns ${plan.etcdNs}`, 'link set e0 master br0', 'link set e0 up');
  }
  for (const n of plan.nodes) {
    const br = plan.subnets[n.subnet]!.bridge;
    lines.push(`link add ${n.lanIf} type veth peer name eth0 netns ${n.ns}`, `link set ${n.lanIf} master ${br}`, `link set ${n.lanIf} up`);
  }
  return lines;
}

export function routerLines(plan: LabPlan): string[] {
  const lines = ['link set lo up'];
  for (const s of plan.subnets) {
    lines.push(`addr add ${s.gateway}/${s.prefixLen} dev eth${s.index}`, `link set eth${s.index} up`);
  }
  return lines;
}

export function hostLines(address: string, prefixLen: number, gateway: string): string[] {
  return ['link set lo up', `addr add ${address}/${prefixLen} dev eth0`, 'link set eth0 up', `route add default via ${gateway}`];
}

/** Creates the links and addresses of an already-created set of namespaces. */
export async function buildUnderlay(plan: LabPlan): Promise<void> {
  await ipBatch(plan.lanNs, lanLines(plan));
  const jobs: Promise<void>[] = [ipBatch(plan.routerNs, routerLines(plan))];
  const s0 = plan.subnets[0]!;
  if (plan.etcdNs && plan.etcdAddress) jobs.push(ipBatch(plan.etcdNs, hostLines(plan.etcdAddress, s0.prefixLen, s0.gateway)));
  for (const n of plan.nodes) {
    const s = plan.subnets[n.subnet]!;
    jobs.push(ipBatch(n.ns, hostLines(n.address, s.prefixLen, s.gateway)));
  }
  await Promise.all(jobs);
  if (plan.subnets.length > 1) {
    // Forwarding in the router's own namespace (a per-namespace setting).
    const r = await run([IP, 'netns', 'exec', plan.routerNs, '/usr/sbin/sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    if (r.code !== 0) throw new Error(`enabling forwarding in ${plan.routerNs}: ${r.stderr.trim()}`);
  }
}

/** Makes an empty pod namespace with lo up. */
export async function makePodNs(ns: string): Promise<void> {
  await ipBatch(null, [`netns add ${ns}`]);
  await ipBatch(ns, ['link set lo up']);
}
