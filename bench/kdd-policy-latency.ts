// A Kubernetes NetworkPolicy written with kubectl → enforced on packets, on the kubernetes datastore,
// on a node holding 1,000 local endpoints (Pods in the API) and 1,000 Kubernetes NetworkPolicies.
//
//   npm run build && sudo node dist/bench/kdd-policy-latency.js [--write] [--reps N] [--extra N]
//
// A real kube-apiserver (+ its etcd) with manifests/crds.yaml and an audit log of NetworkPolicy
// writes; the real agent (DATASTORE_TYPE=kubernetes) in its own network namespace
// (testing/node-fixture.ts) reaching the API through testing/ns-forwarder.ts; two pods wired by the
// real `tortie` CNI plugin; a prober in the client pod (bench/prober.ts). Each repetition: `kubectl
// apply` of a NetworkPolicy denying all ingress to the server, then `kubectl delete` of it. Three
// times per change: from kubectl's start, from the API server committing the write (the audit log's
// ResponseComplete stageTimestamp, microseconds, same clock), to the first connection that obeys.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Conflist, runConflistAdd } from '../testing/cni-harness.js';
import { startKubeApiserver, type TestKubeApiserver } from '../testing/kube-apiserver.js';
import { BIN, TestNode, inNs } from '../testing/node-fixture.js';
import { NsPortForwarder } from '../testing/ns-forwarder.js';
import { agentPhases, median, pct, sleep } from './lab-util.js';
import { PROBE_TIMEOUT_MS, Prober } from './prober.js';
import { updateBenchmarkSection } from './report.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const REPS = arg('--reps', 10);
const EXTRA = arg('--extra', 1000);
const NODE = 'worker01';

type Obj = Record<string, any>;

interface Change {
  /** kubectl started → packets obey. */
  fromKubectl: number;
  /** The API server committed the write → packets obey. */
  fromApi: number;
  /** kubectl's own run (start → exit). */
  kubectl: number;
}

/** The ResponseComplete stageTimestamps (epoch ms) of NetworkPolicy writes `verb` of `name`, in order. */
function auditTimes(file: string, verb: string, name: string): number[] {
  const out: number[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes(name)) continue;
    const ev = JSON.parse(line) as Obj;
    if (ev.stage !== 'ResponseComplete' || ev.verb !== verb || ev.objectRef?.name !== name || ev.responseStatus?.code >= 300) continue;
    out.push(Date.parse(ev.stageTimestamp as string) + (Number(/\.\d{3}(\d{3})Z$/.exec(ev.stageTimestamp as string)?.[1] ?? 0) / 1000));
  }
  return out;
}

function denyAll(): Obj {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'bench-deny', namespace: 'bench' },
    spec: { podSelector: { matchLabels: { role: 'server' } }, policyTypes: ['Ingress'], ingress: [] },
  };
}

/** 1,000 Pods on this node (WorkloadEndpoints whose interfaces do not exist: only the table grows) and 1,000 policies. */
function load(n: number): Obj[] {
  const items: Obj[] = [];
  for (let i = 0; i < 20; i++) {
    items.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `ns${i}`, labels: { team: `t${i % 4}` } } });
    // No controller-manager here: the ServiceAccount admission needs each namespace's default account.
    items.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: `ns${i}` } });
  }
  for (let i = 0; i < n; i++) {
    const ns = `ns${i % 20}`;
    const ip = `10.${100 + Math.floor(i / 250)}.0.${(i % 250) + 1}/32`;
    items.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `pod${i}`, namespace: ns, labels: { app: `app${i % 100}`, tier: i % 3 === 0 ? 'web' : 'db' }, annotations: { 'cni.projectcalico.org/podIP': ip, 'cni.projectcalico.org/podIPs': ip } },
      spec: { nodeName: NODE, containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10.1' }] },
    });
    items.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: `pol${i}`, namespace: ns },
      spec: {
        podSelector: { matchLabels: { app: `app${i % 100}` } },
        policyTypes: ['Ingress'],
        ingress: [
          { from: [{ podSelector: { matchLabels: { tier: 'web' } } }], ports: [{ protocol: 'TCP', port: 8000 + (i % 50) }] },
          { from: [{ namespaceSelector: { matchLabels: { team: `t${i % 4}` } } }, { ipBlock: { cidr: '192.168.0.0/16', except: [`192.168.${i % 250}.0/24`] } }] },
        ],
      },
    });
  }
  return items;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-bench-kddpol-'));
  const audit = join(dir, 'audit.log');
  writeFileSync(join(dir, 'audit-policy.yaml'), [
    'apiVersion: audit.k8s.io/v1',
    'kind: Policy',
    'omitStages: ["RequestReceived", "ResponseStarted"]',
    'rules:',
    '  - level: Metadata',
    '    resources: [{ group: "networking.k8s.io", resources: ["networkpolicies"] }]',
    '    verbs: ["create", "update", "patch", "delete"]',
    '  - level: None',
  ].join('\n'));
  let api: TestKubeApiserver | undefined;
  let node: TestNode | undefined;
  let fwd: NsPortForwarder | undefined;
  const procs: Array<{ stop(): void }> = [];
  try {
    api = await startKubeApiserver({ extraArgs: [`--audit-policy-file=${join(dir, 'audit-policy.yaml')}`, `--audit-log-path=${audit}`, '--audit-log-mode=blocking'] });
    const kubectl = (args: string[], input?: unknown) => api!.kubectl(args, input === undefined ? undefined : JSON.stringify(input));
    await kubectl(['apply', '-f', join(ROOT, 'manifests/crds.yaml')]);
    await kubectl(['wait', '--for=condition=Established', '--all', 'crd', '--timeout=120s']);
    await kubectl(['create', '-f', '-'], {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE, labels: { 'kubernetes.io/hostname': NODE } } },
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } },
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'bench' } },
        ...['server', 'client'].map((role) => ({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: role, namespace: 'bench', labels: { role } },
          spec: { nodeName: NODE, containers: [{ name: role, image: 'registry.k8s.io/e2e-test-images/agnhost:2.56' }] },
        })),
      ],
    });
    node = new TestNode({
      nodeName: NODE,
      datastoreEnv: { DATASTORE_TYPE: 'kubernetes', KUBECONFIG: api.kubeconfig },
      env: { FELIX_HEALTHENABLED: 'true', CLUSTER_TYPE: 'k8s,bgp', FELIX_PROMETHEUSMETRICSENABLED: 'true', FELIX_PROMETHEUSMETRICSHOST: '127.0.0.1' },
    });
    node.setUp();
    fwd = new NsPortForwarder(node.hostNs, api.port, dir);
    await fwd.start();
    await node.startAgent(60_000);
    const conflist: Conflist = {
      name: 'k8s-pod-network',
      cniVersion: '1.0.0',
      plugins: [{ type: 'tortie', datastore_type: 'kubernetes', kubernetes: { kubeconfig: api.kubeconfig }, nodename_file: join(node.stateDir, 'nodename'), agent_socket: node.socket, ipam: { type: 'tortie-ipam' }, policy: { type: 'k8s' } }],
    };
    const addrs: Record<string, string> = {};
    const nss: Record<string, string> = {};
    for (const role of ['server', 'client']) {
      const ns = node.makePodNs(role);
      nss[role] = ns;
      let r = await runConflistAdd(conflist, {
        containerId: `bench-${role}`,
        netns: `/run/netns/${ns}`,
        ifname: 'eth0',
        args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${role};K8S_POD_INFRA_CONTAINER_ID=bench-${role}`,
        cacheDir: join(dir, 'cni-cache'),
        cniPath: [join(BIN('tortie'), '..')],
        wrapper: ['/usr/sbin/ip', 'netns', 'exec', node.hostNs],
      });
      // The agent may still be registering the node on its first ADD: once more after a pause.
      if (!r.ok) {
        await sleep(3000);
        r = await runConflistAdd(conflist, { containerId: `bench-${role}-2`, netns: `/run/netns/${ns}`, ifname: 'eth0', args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${role};K8S_POD_INFRA_CONTAINER_ID=bench-${role}-2`, cacheDir: join(dir, 'cni-cache'), cniPath: [join(BIN('tortie'), '..')], wrapper: ['/usr/sbin/ip', 'netns', 'exec', node.hostNs] });
      }
      if (!r.ok) throw new Error(`ADD ${role}: ${JSON.stringify(r.error)}\n${node.agentLog.slice(-3000)}`);
      addrs[role] = (r.result as { ips: { address: string }[] }).ips[0]!.address.split('/')[0]!;
    }
    const server = spawn('/usr/sbin/ip', ['netns', 'exec', nss.server!, process.execPath, '-e', "require('net').createServer(s=>s.end()).listen(80)"], { stdio: 'ignore' });
    procs.push({ stop: () => server.kill() });
    const prober = new Prober(nss.client!, addrs.server!, 80);
    procs.push(prober);

    const measure = async (): Promise<{ deny: Change[]; allow: Change[] }> => {
      const out = { deny: [] as Change[], allow: [] as Change[] };
      await prober.until(true);
      for (let i = 0; i < REPS; i++) {
        for (const kind of ['deny', 'allow'] as const) {
          await sleep(300);
          const before = auditTimes(audit, kind === 'deny' ? 'create' : 'delete', 'bench-deny').length;
          const t0 = Date.now();
          const done = kind === 'deny' ? kubectl(['apply', '-f', '-'], denyAll()) : kubectl(['-n', 'bench', 'delete', 'networkpolicy', 'bench-deny']);
          const obeyed = prober.until(kind === 'allow');
          await done;
          const tKubectl = Date.now();
          const at = await obeyed;
          const committed = auditTimes(audit, kind === 'deny' ? 'create' : 'delete', 'bench-deny')[before];
          if (committed === undefined) throw new Error(`no audit event for the ${kind} write`);
          out[kind].push({ fromKubectl: at - t0, fromApi: at - committed, kubectl: tKubectl - t0 });
        }
      }
      return out;
    };

    const small = await measure();
    console.error(`small node: deny p50 ${median(small.deny.map((c) => c.fromApi)).toFixed(0)} ms after the API write`);
    const t0 = Date.now();
    const items = load(EXTRA);
    for (let i = 0; i < items.length; i += 500) await kubectl(['create', '-f', '-'], { apiVersion: 'v1', kind: 'List', items: items.slice(i, i + 500) });
    for (;;) {
      const m = /^felix_active_local_endpoints (\d+)/m.exec(node.metrics());
      if (m && Number(m[1]) >= EXTRA + 2) break;
      if (Date.now() - t0 > 300_000) throw new Error(`the agent did not program ${EXTRA} endpoints within 300 s (felix_active_local_endpoints ${m?.[1]})`);
      await sleep(1000);
    }
    // The 1,000 policies too: a pass after the last write.
    await sleep(5000);
    const loadMs = Date.now() - t0;
    const chains = inNs(node.hostNs, ['nft', 'list', 'chains', 'inet']).split('\n').filter((l) => /^\s*chain /.test(l)).length;
    const logFrom = node.agentLog.length;
    const big = await measure();
    const phases = agentPhases(node.agentLog.slice(logFrom));
    const row = (cs: Change[], f: keyof Change) => {
      const xs = cs.map((c) => c[f]);
      return `${median(xs).toFixed(0)} / ${pct(xs, 90).toFixed(0)} / ${Math.max(...xs).toFixed(0)}`;
    };
    const table = [
      '| node | change | API write → packets obey, ms p50 / p90 / max | kubectl start → obey | kubectl itself (start → exit) |',
      '|---|---|---|---|---|',
      ...(
        [
          ['2 local endpoints, 1 policy', small],
          [`${EXTRA + 2} local endpoints, ${EXTRA + 1} Kubernetes NetworkPolicies`, big],
        ] as const
      ).flatMap(([name, r]) => (['deny', 'allow'] as const).map((k) => `| ${name} | ${k === 'deny' ? 'deny (apply)' : 'allow again (delete)'} | ${row(r[k], 'fromApi')} | ${row(r[k], 'fromKubectl')} | ${row(r[k], 'kubectl')} |`)),
    ].join('\n');
    console.log(table);
    console.log(`loaded node: ${phases}`);
    console.log(`loaded: ${EXTRA} pods + ${EXTRA} policies created with kubectl and programmed in ${(loadMs / 1000).toFixed(1)} s; table of ${chains} chains`);
    if (process.argv.includes('--write')) {
      updateBenchmarkSection(
        'kdd-policy-latency',
        `## Kubernetes NetworkPolicy written with kubectl → packets obey (kubernetes datastore)\n\n` +
          `Reproduce (as root): \`npm run build && node dist/bench/kdd-policy-latency.js --write\`\n\n` +
          `tortie-node on DATASTORE_TYPE=kubernetes against a real kube-apiserver v1.34 (loopback, reached from the node's namespace through a forwarder); ` +
          `a prober in the client pod opens a new TCP connection to the server pod every ~1 ms (${PROBE_TIMEOUT_MS} ms timeout). ${REPS} times each: ` +
          `\`kubectl apply\` of a NetworkPolicy denying all ingress to the server, then \`kubectl delete\` of it. "API write" is the API server's own ` +
          `ResponseComplete time of that request (its audit log, microseconds, same clock): the agent's share. "kubectl start" adds kubectl's ` +
          `process start, discovery and request. The loaded node holds ${EXTRA} more Pods on this node (WorkloadEndpoints whose interfaces do not exist) ` +
          `and ${EXTRA} Kubernetes NetworkPolicies (pod, namespace and ipBlock-except peers), created with kubectl and programmed in ` +
          `${(loadMs / 1000).toFixed(1)} s (${chains} nft chains). Target (issue 10): p50/p90 ≤ 150 ms at 1,000 policies × 1,000 endpoints.\n\n${table}\n\nLoaded node, ${phases}. Machine load (1 min) at the end: ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs.\n\n**Not at target; why, measured.** The loaded node's time is the policy pass re-reading the whole model from the\nAPI server on every change: one LIST per kind (1,000 Pods → WorkloadEndpoints, 1,000 NetworkPolicies converted\nto \`knp.default.*\`, profiles from Namespaces and ServiceAccounts). A CPU profile of \`readPolicyInputs\` against\nthe same data (kube-apiserver on loopback, load ~20): 840–960 ms per read, of which our own CPU is roughly a\nthird (HTTP client and JSON parse, pod → WorkloadEndpoint conversion, the derived objects' encode/decode round\ntrip, model building) and the rest is waiting for the API server's LIST; on the embedded datastore the same read\nis 14 ms. The fix is Felix's: keep the model in memory from the watches (a watch-fed cache) and read it from\nthere. What stops a simple cache is the guarantee the lab and the tests rely on ("a pass that started after a\nwrite has it in the kernel"): a cache fed by a watch lags the write by the watch's delivery time, so a pass can\nstart after the write and still miss it. A cache needs a freshness barrier per kind (Kubernetes watch bookmarks\nor an etcd progress request up to the revision read at the pass's start) before it can replace the LISTs. Left\nfor the next session, with this benchmark as its measure.\n`,
      );
    }
  } finally {
    for (const p of procs) p.stop();
    await node?.stop();
    await fwd?.close();
    await api?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
