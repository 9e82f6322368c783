// The connectivity test's Kubernetes driver: probe Pods through the API (namespace
// tortie-connectivity, agnhost `netexec` pinned to each node by spec.nodeName, plus one
// hostNetwork agnhost per node for host→pod and pod→host), a Service in front of the probes,
// Kubernetes NetworkPolicies for the deny/allow scenario. Every packet is sent by a probe itself,
// asked through the API server's pod proxy (`pods/<name>:<port>/proxy/dial` for TCP, `…/shell`
// for busybox ping), so tortiectl needs only the API, not a route to the pods. Cleanup deletes the
// namespace (which takes every Pod, the Service and the policies with it) and waits until it is gone.
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import type { KubeClient } from '../../libcalico-go/lib/backend/kubernetes/client.js';
import {
  type Check,
  type ConnectivityDriver,
  PROBE_LABEL,
  PROBE_NAMESPACE,
  type PolicyStage,
  type ProbeNode,
  type ProbeWorkload,
} from '../../libcalico-go/lib/connectivity/plan.js';
import { modelFromStore } from '../../libcalico-go/lib/policy/from-store.js';
import { ResourceClient } from '../../libcalico-go/lib/clientv3/resources.js';
import { nodeFacts } from './cluster-findings.js';
import { formatVerdict } from './policy.js';
import { readTraceFacts } from './trace.js';
import { tracePath } from './trace-path.js';

export const DEFAULT_PROBE_IMAGE = 'registry.k8s.io/e2e-test-images/agnhost:2.56';
const PORT = 8080;
/** netexec of the hostNetwork probes: a port unlikely to be taken on a node. */
export const HOST_PORT = 29080;
const SERVICE = 'probe';
const NS = PROBE_NAMESPACE;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Obj = Record<string, unknown>;
interface PodObj {
  metadata: { name: string; labels?: Record<string, string> };
  spec: { nodeName?: string };
  status: { phase?: string; podIP?: string; containerStatuses?: { ready: boolean; state?: Record<string, { reason?: string; message?: string }> }[] };
}

export interface KubeDriverOptions {
  image?: string;
  /** How long deploy waits for the Pods to run. */
  readyTimeoutMs?: number;
  log?: (line: string) => void;
}

export class KubeDriver implements ConnectivityDriver {
  private probes: ProbeWorkload[] = [];
  private nodeList: ProbeNode[] = [];
  private created = false;
  private readonly image: string;

  constructor(
    private readonly kube: KubeClient,
    private readonly store: Backend,
    private readonly opts: KubeDriverOptions = {},
  ) {
    this.image = opts.image ?? DEFAULT_PROBE_IMAGE;
  }

  async nodes(): Promise<ProbeNode[]> {
    const list = await this.kube.request<{ items: { metadata: { name: string }; spec?: { unschedulable?: boolean }; status?: { addresses?: { type: string; address: string }[]; conditions?: { type: string; status: string }[] } }[] }>('GET', '/api/v1/nodes');
    const out: ProbeNode[] = [];
    for (const n of list.items) {
      const ready = n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      const addr = n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
      if (!ready || !addr || n.spec?.unschedulable) {
        this.opts.log?.(`  skipping node ${n.metadata.name}: ${!ready ? 'not Ready' : !addr ? 'no InternalIP' : 'unschedulable'}`);
        continue;
      }
      out.push({ name: n.metadata.name, address: addr });
    }
    if (out.length === 0) throw new Error('no Ready, schedulable node with an InternalIP');
    this.nodeList = out;
    return out;
  }

  private pod(name: string, node: string, labels: Record<string, string>, host: boolean): Obj {
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS, labels },
      spec: {
        nodeName: node,
        hostNetwork: host,
        terminationGracePeriodSeconds: 0,
        tolerations: [{ operator: 'Exists' }],
        containers: [{ name: 'probe', image: this.image, imagePullPolicy: 'IfNotPresent', args: ['netexec', `--http-port=${host ? HOST_PORT : PORT}`, '--udp-port=-1'] }],
      },
    };
  }

  async deploy(plan: { name: string; node: string }[]): Promise<ProbeWorkload[]> {
    try {
      await this.kube.request('GET', `/api/v1/namespaces/${NS}`);
      throw new Error(`namespace ${NS} exists (left by an earlier run, or being deleted): kubectl delete namespace ${NS}, then run again`);
    } catch (e) {
      if (!/not found|404/i.test((e as Error).message)) throw e;
    }
    this.created = true;
    await this.kube.request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, labels: { app: PROBE_LABEL } } } });
    for (const [i, p] of plan.entries()) {
      await this.kube.request('POST', `/api/v1/namespaces/${NS}/pods`, { body: this.pod(p.name, p.node, { app: PROBE_LABEL, role: i === 0 ? 'client' : 'server' }, false) });
    }
    for (const n of this.nodeList) {
      await this.kube.request('POST', `/api/v1/namespaces/${NS}/pods`, { body: this.pod(hostPodName(n.name), n.name, { app: `${PROBE_LABEL}-host` }, true) });
    }
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 120_000);
    const want = new Set([...plan.map((p) => p.name), ...this.nodeList.map((n) => hostPodName(n.name))]);
    for (;;) {
      const pods = (await this.kube.request<{ items: PodObj[] }>('GET', `/api/v1/namespaces/${NS}/pods`)).items;
      const notReady = pods.filter((p) => want.has(p.metadata.name) && !(p.status.phase === 'Running' && p.status.podIP && p.status.containerStatuses?.every((c) => c.ready)));
      if (notReady.length === 0 && pods.length >= want.size) {
        this.probes = plan.map((p) => ({ key: `${NS}/${p.name}`, node: p.node, ip: pods.find((x) => x.metadata.name === p.name)!.status.podIP!, port: PORT }));
        break;
      }
      if (Date.now() > deadline) {
        const why = notReady.map((p) => {
          const st = p.status.containerStatuses?.[0]?.state;
          const w = st ? Object.entries(st).map(([k, v]) => `${k}${v.reason ? ` ${v.reason}` : ''}${v.message ? `: ${v.message}` : ''}`)[0] : undefined;
          return `${p.metadata.name} (${p.spec.nodeName}): ${p.status.phase ?? 'no phase'}${w ? `, ${w}` : ''}`;
        });
        throw new Error(`probe Pods not running after ${((this.opts.readyTimeoutMs ?? 120_000) / 1000).toFixed(0)}s: ${why.join('; ')}`);
      }
      await sleep(500);
    }
    // netexec answers through the proxy once it listens.
    for (const p of this.probes) await this.untilAnswers(p.key.split('/')[1]!, PORT);
    for (const n of this.nodeList) await this.untilAnswers(hostPodName(n.name), HOST_PORT);
    for (const p of this.probes) this.opts.log?.(`  ${p.key} on ${p.node}: ${p.ip}`);
    return this.probes;
  }

  private async untilAnswers(pod: string, port: number): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await this.proxyText(pod, port, '/shell', { shellCommand: 'echo ok' });
        return;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`probe ${pod} does not answer on ${port}: ${(e as Error).message}`);
        await sleep(300);
      }
    }
  }

  private proxyPath(pod: string, port: number, path: string): string {
    return `/api/v1/namespaces/${NS}/pods/${pod}:${port}/proxy${path}`;
  }

  /** GET through the pod proxy; the answer's text (JSON or not). */
  private async proxyText(pod: string, port: number, path: string, query: Record<string, string>): Promise<string> {
    const r = await this.kube.request<unknown>('GET', this.proxyPath(pod, port, path), { query });
    return typeof r === 'string' ? r : JSON.stringify(r);
  }

  private source(check: Check): { pod: string; port: number } {
    if (check.from.kind === 'host') return { pod: hostPodName(check.from.node), port: HOST_PORT };
    return { pod: check.from.key.split('/')[1]!, port: PORT };
  }

  async podMtu(probe: ProbeWorkload): Promise<number> {
    const out = await this.shell(probe.key.split('/')[1]!, PORT, 'cat /sys/class/net/eth0/mtu');
    const mtu = Number(out.output.trim());
    if (!Number.isInteger(mtu)) throw new Error(`cannot read the pod MTU of ${probe.key}: ${out.output || out.error}`);
    return mtu;
  }

  async service(): Promise<{ name: string; ip: string; port: number }> {
    const svc = await this.kube.request<{ spec: { clusterIP: string } }>('POST', `/api/v1/namespaces/${NS}/services`, {
      body: { apiVersion: 'v1', kind: 'Service', metadata: { name: SERVICE, namespace: NS }, spec: { selector: { app: PROBE_LABEL, role: 'server' }, ports: [{ port: 80, targetPort: PORT, protocol: 'TCP' }] } },
    });
    // The Service answers once its endpoints are published and kube-proxy programmed them.
    const ip = svc.spec.clusterIP;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const r = await this.dial(this.probes[0]!.key.split('/')[1]!, PORT, ip, 80);
      if (r.reached) break;
      await sleep(500);
    }
    return { name: `${NS}/${SERVICE}`, ip, port: 80 };
  }

  private async shell(pod: string, port: number, cmd: string): Promise<{ output: string; error: string }> {
    try {
      const text = await this.proxyText(pod, port, '/shell', { shellCommand: cmd });
      const j = JSON.parse(text) as { output?: string; error?: string };
      return { output: j.output ?? '', error: j.error ?? '' };
    } catch (e) {
      // netexec answers a failed command with 417 and the JSON in the body.
      const m = /\{.*"output".*\}/s.exec((e as Error).message);
      if (m) {
        try {
          const j = JSON.parse(m[0]) as { output?: string; error?: string };
          return { output: j.output ?? '', error: j.error || 'failed' };
        } catch {
          // fall through
        }
      }
      return { output: '', error: (e as Error).message };
    }
  }

  private async dial(pod: string, port: number, ip: string, dport: number): Promise<{ reached: boolean; observed: string }> {
    try {
      const text = await this.proxyText(pod, port, '/dial', { host: ip, port: String(dport), request: 'hostname', protocol: 'http', tries: '1' });
      const j = JSON.parse(text) as { responses?: string[]; errors?: string[] };
      if (j.responses && j.responses.length > 0) return { reached: true, observed: `answered by ${j.responses[0]}` };
      return { reached: false, observed: `no connection: ${(j.errors ?? []).join('; ').slice(0, 200) || 'no answer'}` };
    } catch (e) {
      return { reached: false, observed: `no connection: ${(e as Error).message.slice(0, 200)}` };
    }
  }

  async send(check: Check): Promise<{ reached: boolean; observed: string }> {
    const { pod, port } = this.source(check);
    const once = async () => {
      if (check.proto === 'tcp') return this.dial(pod, port, check.toIp, check.port!);
      // busybox ping: the kernel sets DF on an ICMP socket (path MTU discovery), so a packet of
      // the pod's MTU is not fragmented and is lost where a smaller link is.
      // (exit status in the output: netexec turns a failed command into an HTTP error without its words)
      const r = await this.shell(pod, port, `ping -c 1 -W 2${check.size !== undefined ? ` -s ${check.size}` : ''} ${check.toIp} 2>&1; echo rc=$?`);
      const reached = r.error === '' && /rc=0\s*$/.test(r.output);
      return { reached, observed: reached ? 'echo reply' : (r.output.split('\n').find((l) => /frag|too long|unreachable/i.test(l)) ?? `no echo reply within 2s`).trim() };
    };
    let r = await once();
    // Policy takes a moment to reach every node: retry a policy check until it holds (15 s).
    const deadline = Date.now() + 15_000;
    while (check.group === 'policy' && r.reached !== check.expect && Date.now() < deadline) {
      await sleep(500);
      r = await once();
    }
    return r;
  }

  async policy(stage: PolicyStage): Promise<void> {
    const base = `/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies`;
    if (stage === 'deny' || stage === 'allow') {
      const name = stage === 'deny' ? 'default-deny' : 'allow-client';
      const spec =
        stage === 'deny'
          ? { podSelector: {}, policyTypes: ['Ingress'] }
          : {
              podSelector: { matchLabels: { app: PROBE_LABEL } },
              policyTypes: ['Ingress'],
              ingress: [{ from: [{ podSelector: { matchLabels: { role: 'client' } } }], ports: [{ protocol: 'TCP', port: PORT }] }],
            };
      await this.kube.request('POST', base, { body: { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: NS }, spec } });
    } else {
      for (const name of ['allow-client', 'default-deny']) await this.kube.request('DELETE', `${base}/${name}`).catch(() => undefined);
    }
  }

  async diagnose(check: Check, observed: string): Promise<string[]> {
    const { pod } = this.source(check);
    const srcNode = check.from.kind === 'host' ? check.from.node : this.probes.find((p) => p.key === (check.from as { key: string }).key)!.node;
    const what = check.proto === 'tcp' ? `HTTP GET ${check.toIp}:${check.port} (agnhost dial)` : `ping -c 1${check.size !== undefined ? ` -s ${check.size}` : ''} ${check.toIp} (busybox; DF set by the kernel)`;
    const lines = [`sent: ${what} by Pod ${NS}/${pod} on ${srcNode}; expected ${check.expect ? 'to get through' : 'to be refused'}, saw: ${observed}`];
    const srcAddr = check.from.kind === 'host' ? this.nodeList.find((n) => n.name === srcNode)?.address : this.probes.find((p) => p.key === (check.from as { key: string }).key)?.ip;
    try {
      const facts = await readTraceFacts(this.store);
      if (check.to.kind !== 'service' && srcAddr) {
        const t = tracePath(facts, srcAddr, check.toIp, check.proto === 'tcp' ? { protocol: 'TCP', port: check.port } : { protocol: 'ICMP' });
        lines.push(`path (tortiectl trace ${srcAddr} ${check.toIp}): ${t.delivered ? 'delivered' : `DROPPED at ${t.drop!.node} ${t.drop!.where}: ${t.drop!.why}`}`);
        for (const h of t.hops.filter((x) => x.where.startsWith('route'))) lines.push(`  route on ${h.node}: ${h.what}`);
        for (const n of t.notes) lines.push(`  ${n}`);
      }
      if (check.to.kind !== 'service' && srcAddr) {
        const model = await modelFromStore(this.store);
        const text = formatVerdict(model, { src: { ip: srcAddr }, dst: { ip: check.toIp }, ...(check.proto === 'tcp' ? { protocol: 'TCP' as const, port: check.port } : { protocol: 'ICMP' as const }) });
        for (const l of text.trimEnd().split('\n')) lines.push(`policy: ${l.trim()}`);
      }
      if (check.to.kind === 'host' && check.from.kind === 'pod' && check.to.node === srcNode) {
        const st = nodeFacts(await new ResourceClient(this.store).list('CalicoNodeStatus')).find((n) => n.node === srcNode);
        const v = st?.t.felixEnv?.FELIX_DEFAULTENDPOINTTOHOSTACTION;
        lines.push(`workload → its own host on ${srcNode}: DefaultEndpointToHostAction ${v ?? 'Accept (default)'}`);
      }
    } catch (e) {
      lines.push(`(datastore facts unavailable: ${(e as Error).message})`);
    }
    return lines;
  }

  async cleanup(): Promise<string[]> {
    if (!this.created) return [];
    const warnings: string[] = [];
    await this.kube.request('DELETE', `/api/v1/namespaces/${NS}`, { body: { propagationPolicy: 'Foreground', gracePeriodSeconds: 0 } }).catch((e: Error) => warnings.push(`delete namespace ${NS}: ${e.message}`));
    const deadline = Date.now() + 90_000;
    for (;;) {
      try {
        await this.kube.request('GET', `/api/v1/namespaces/${NS}`);
      } catch (e) {
        if (/not found|404/i.test((e as Error).message)) break;
      }
      if (Date.now() > deadline) {
        warnings.push(`namespace ${NS} still terminating after 90s`);
        break;
      }
      await sleep(500);
    }
    this.created = false;
    return warnings;
  }
}

export function hostPodName(node: string): string {
  return `host-${node.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 50)}`;
}
