// `tortie-lab connectivity N`: the connectivity test (libcalico-go/lib/connectivity/plan.ts) on the
// lab's own pods. The driver makes probe pods through the lab's CNI path (`pod add`, namespace
// tortie-connectivity, serving TCP 8080), sends each check's packet from inside the source's
// network namespace (nsagent's TCP connect, iputils ping with -M do for the MTU checks), puts the
// policy scenario in place with tortiectl (waiting until every node's policy loop enforces it) and,
// on a failure, asks the kernel (`ip route get` on both nodes, the links' MTUs) and the datastore
// (`tortiectl policy explain`, the agent's DefaultEndpointToHostAction) why.
import {
  type Check,
  type ConnectivityDriver,
  PROBE_LABEL,
  PROBE_NAMESPACE,
  type PolicyStage,
  type ProbeNode,
  type ProbeWorkload,
} from '../../libcalico-go/lib/connectivity/plan.js';
import { type Log, ctlCapture, podAdd, podDel, waitNodesReady } from './lab.js';
import { type LabState, mustReadState } from './state.js';
import { IP, run } from './sys.js';
import type { NodePlan } from './topology.js';

const NODE = process.execPath;
const NSAGENT = new URL('./nsagent.js', import.meta.url).pathname;
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const PING = '/usr/bin/ping';
export const PROBE_PORT = 8080;
const TIMEOUT_MS = 2000;

const DENY = 'default-deny';
const ALLOW = 'allow-client';

/** The scenario's policies: default deny of ingress in the probe namespace, then an allow from role=client. */
export function scenarioPolicies(stage: PolicyStage, port: number): Record<string, unknown>[] {
  const deny = {
    apiVersion: 'projectcalico.org/v3',
    kind: 'NetworkPolicy',
    metadata: { name: DENY, namespace: PROBE_NAMESPACE },
    spec: { selector: 'all()', types: ['Ingress'] },
  };
  const allow = {
    apiVersion: 'projectcalico.org/v3',
    kind: 'NetworkPolicy',
    metadata: { name: ALLOW, namespace: PROBE_NAMESPACE },
    spec: {
      order: 100,
      selector: `app == '${PROBE_LABEL}'`,
      types: ['Ingress'],
      ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: "role == 'client'" }, destination: { ports: [port] } }],
    },
  };
  return stage === 'none' ? [] : stage === 'deny' ? [deny] : [deny, allow];
}

export class LabDriver implements ConnectivityDriver {
  private made: string[] = [];
  private policiesMade = false;
  private probes: ProbeWorkload[] = [];

  constructor(
    private readonly lab: string,
    private readonly log: Log,
  ) {}

  private state(): LabState {
    return mustReadState(this.lab);
  }

  private node(name: string): NodePlan {
    const n = this.state().plan.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** The network namespace a check is sent from. */
  private nsOf(check: Check): string {
    const s = this.state();
    if (check.from.kind === 'host') return this.node(check.from.node).ns;
    const pod = s.pods[check.from.key];
    if (!pod) throw new Error(`no pod ${check.from.key}`);
    return pod.netns;
  }

  private nodeOfCheck(check: Check): string {
    return check.from.kind === 'host' ? check.from.node : this.probes.find((p) => p.key === (check.from as { key: string }).key)!.node;
  }

  async nodes(): Promise<ProbeNode[]> {
    const s = this.state();
    if (s.kube) throw new Error(`lab ${this.lab} is a Kubernetes cluster: run tortiectl connectivity test there (tortie-lab ctl ${this.lab} -- connectivity test)`);
    if (s.status !== 'up') throw new Error(`lab ${this.lab} is ${s.status}`);
    const busy = Object.keys(s.pods).filter((k) => k.startsWith(`${PROBE_NAMESPACE}/`));
    if (busy.length > 0) throw new Error(`probe pods from an earlier run are still there (${busy.join(', ')}): tortie-lab pod del ${this.lab} ${busy[0]}`);
    return s.plan.nodes.map((n) => ({ name: n.name, address: n.address }));
  }

  async deploy(plan: { name: string; node: string }[]): Promise<ProbeWorkload[]> {
    const out: ProbeWorkload[] = [];
    for (const [i, p] of plan.entries()) {
      const key = `${PROBE_NAMESPACE}/${p.name}`;
      this.made.push(key);
      const pod = await podAdd(this.lab, p.node, key, { labels: { app: PROBE_LABEL, role: i === 0 ? 'client' : 'server' }, serve: [{ port: PROBE_PORT, proto: 'tcp' }] }, () => undefined);
      out.push({ key, node: p.node, ip: pod.ip!, port: PROBE_PORT });
      this.log(`  ${key} on ${p.node}: ${pod.ip}`);
    }
    this.probes = out;
    return out;
  }

  async podMtu(probe: ProbeWorkload): Promise<number> {
    const ns = this.state().pods[probe.key]!.netns;
    const r = await run([IP, '-n', ns, '-j', 'link', 'show', 'dev', 'eth0']);
    const [link] = JSON.parse(r.stdout) as { mtu: number }[];
    return link!.mtu;
  }

  async send(check: Check): Promise<{ reached: boolean; observed: string }> {
    const ns = this.nsOf(check);
    if (check.proto === 'tcp') {
      const req = { proto: 'tcp', port: check.port, timeoutMs: TIMEOUT_MS, targets: [{ key: 't', ip: check.toIp }] };
      const r = await run([IP, 'netns', 'exec', ns, NODE, NSAGENT, 'probe', JSON.stringify(req)], { env: { PATH }, timeoutMs: 30_000 });
      if (r.code !== 0) return { reached: false, observed: `probe failed to run: ${r.stderr.trim()}` };
      const ok = (JSON.parse(r.stdout) as Record<string, boolean>).t === true;
      return { reached: ok, observed: ok ? 'connected' : `no connection within ${TIMEOUT_MS / 1000}s` };
    }
    const args = ['-n', '-c', '1', '-W', String(TIMEOUT_MS / 1000)];
    if (check.df) args.push('-M', 'do');
    if (check.size !== undefined) args.push('-s', String(check.size));
    const r = await run([IP, 'netns', 'exec', ns, PING, ...args, check.toIp], { env: { PATH }, timeoutMs: 30_000 });
    return { reached: r.code === 0, observed: r.code === 0 ? 'echo reply' : pingError(r.stdout + r.stderr, TIMEOUT_MS) };
  }

  async policy(stage: PolicyStage): Promise<void> {
    const s = this.state();
    const since = Date.now();
    const docs = scenarioPolicies(stage, PROBE_PORT);
    this.policiesMade = true;
    if (docs.length === 0) await this.deletePolicies(s);
    for (const d of docs) await ctlCapture(s, ['apply', '-f', '-'], JSON.stringify(d));
    await waitNodesReady(s.plan.nodes, 60_000, since);
  }

  private async deletePolicies(s: LabState): Promise<void> {
    for (const name of [ALLOW, DENY]) await ctlCapture(s, ['delete', '--skip-not-exists', 'networkpolicy', name, '-n', PROBE_NAMESPACE]);
  }

  async diagnose(check: Check, observed: string): Promise<string[]> {
    const s = this.state();
    const srcNode = this.node(this.nodeOfCheck(check));
    const from = check.from.kind === 'host' ? `node ${srcNode.name} (${srcNode.address}, netns ${srcNode.ns})` : `pod ${check.from.key} (${this.probes.find((p) => p.key === (check.from as { key: string }).key)?.ip}, netns ${this.nsOf(check)}, on ${srcNode.name})`;
    const what = check.proto === 'tcp' ? `TCP connect to ${check.toIp}:${check.port}, ${TIMEOUT_MS / 1000}s timeout` : `ping -c 1${check.df ? ' -M do' : ''}${check.size !== undefined ? ` -s ${check.size}` : ''} ${check.toIp}`;
    const lines = [`sent: ${what}, from ${from}; expected ${check.expect ? 'to get through' : 'to be refused'}, saw: ${observed}`];
    const dstNodeName = check.to.kind === 'pod' ? this.probes.find((p) => p.key === (check.to as { key: string }).key)?.node : check.to.kind === 'host' ? check.to.node : undefined;
    const routeGet = async (n: NodePlan, ip: string) => {
      const r = await run([IP, '-n', n.ns, 'route', 'get', ip]);
      return (r.stdout || r.stderr).trim().split('\n')[0]!.replace(/\s+/g, ' ');
    };
    const srcRoute = await routeGet(srcNode, check.toIp);
    lines.push(`route on ${srcNode.name}: ip route get ${check.toIp} → ${srcRoute}`);
    if (dstNodeName && dstNodeName !== srcNode.name) {
      const dn = this.node(dstNodeName);
      lines.push(`route on ${dn.name}: ip route get ${check.toIp} → ${await routeGet(dn, check.toIp)}`);
      // The kernel's next hop against where the destination is: a route to the wrong node.
      const via = / via (\S+) /.exec(` ${srcRoute} `)?.[1];
      const dev = / dev (\S+) /.exec(` ${srcRoute} `)?.[1];
      const viaNode = s.plan.nodes.find((n) => n.address === via);
      if (via && via !== dn.address && dev === 'eth0') lines.push(`WRONG NEXT HOP: ${srcNode.name} sends to ${via}${viaNode ? ` (${viaNode.name})` : ''}, but ${check.toIp} is on ${dn.name} (${dn.address}): a block routed by two nodes? (tortiectl cluster check)`);
      else if (dev && dev !== 'eth0' && dev !== 'vxlan.calico') lines.push(`WRONG DEVICE: ${srcNode.name} sends ${check.toIp} to its own ${dev}, but it is on ${dn.name} (${dn.address})`);
    }
    if (check.group === 'mtu' || check.df) {
      const mtus: string[] = [];
      for (const name of new Set([srcNode.name, dstNodeName].filter((x): x is string => !!x))) {
        const r = await run([IP, '-n', this.node(name).ns, '-j', 'link', 'show', 'dev', 'eth0']);
        const [l] = JSON.parse(r.stdout || '[{}]') as { mtu?: number }[];
        mtus.push(`${name} eth0 mtu ${l?.mtu ?? '?'}`);
      }
      const size = (check.size ?? 0) + 28;
      const encap = / dev vxlan\.calico /.test(` ${srcRoute} `) ? 50 : 0;
      const onWire = encap ? ` (+${encap} VXLAN = ${size + encap} on the underlay)` : '';
      lines.push(`MTU: pod packets are up to ${size} bytes${onWire}; ${mtus.join(', ')} — a link smaller than that drops full-size packets (set the pod MTU to the smallest underlay MTU minus encapsulation)`);
    }
    if (check.to.kind !== 'service') {
      const src = check.from.kind === 'host' ? srcNode.address : this.probes.find((p) => p.key === (check.from as { key: string }).key)!.ip;
      const pp = check.proto === 'tcp' ? `${check.port}/TCP` : 'icmp';
      try {
        const text = await ctlCapture(s, ['policy', 'explain', src, check.toIp, pp]);
        for (const l of text.trimEnd().split('\n')) lines.push(`policy: ${l.trim()}`);
      } catch (e) {
        lines.push(`policy: (explain failed: ${(e as Error).message})`);
      }
    }
    if (check.to.kind === 'host' && check.from.kind === 'pod' && check.to.node === srcNode.name) {
      try {
        const st = JSON.parse(await ctlCapture(s, ['get', 'caliconodestatus', srcNode.name, '-o', 'json'])) as { status?: { tortie?: { felixEnv?: Record<string, string> } } };
        const v = st.status?.tortie?.felixEnv?.FELIX_DEFAULTENDPOINTTOHOSTACTION;
        lines.push(`workload → its own host on ${srcNode.name}: DefaultEndpointToHostAction ${v ?? 'Accept (default)'}${v && v !== 'Accept' ? ' — the agent drops what pods send to their host (kubelet probes fail); set it to Accept as on the other nodes' : ''}`);
      } catch (e) {
        lines.push(`(node status of ${srcNode.name} unreadable: ${(e as Error).message})`);
      }
    }
    return lines;
  }

  async cleanup(): Promise<string[]> {
    const warnings: string[] = [];
    const s = this.state();
    if (this.policiesMade) await this.deletePolicies(s).catch((e: Error) => warnings.push(`policies: ${e.message}`));
    for (const key of [...this.made].reverse()) {
      if (!this.state().pods[key]) continue;
      await podDel(this.lab, key, () => undefined).catch((e: Error) => warnings.push(`${key}: ${e.message}`));
    }
    this.made = [];
    return warnings;
  }
}

/** ping's own words for why no reply came (or that none came in time). */
export function pingError(out: string, timeoutMs: number): string {
  const line = out
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /Frag needed|message too long|unreachable|Unreachable|Operation not permitted|Network is unreachable|Packet filtered|Destination/i.test(l));
  return line ?? `no echo reply within ${timeoutMs / 1000}s`;
}
