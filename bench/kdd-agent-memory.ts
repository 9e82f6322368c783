// tortie-node's memory on the kubernetes datastore with 1,000 pods in the API.
//
//   sudo node dist/bench/kdd-agent-memory.js [--write]      (root: the agent runs in its own netns)
//
// A real kube-apiserver (+ its etcd) with manifests/crds.yaml; the real agent in a network
// namespace of its own (testing/node-fixture.ts), reaching the API through a forwarder as
// node/pkg/agent-kdd.test.ts does. RSS (VmRSS of the agent's PID) once it is ready with no pods,
// then after 1,000 Pods are created with kubectl — half on the agent's node, half on another —
// and the agent has settled. The API server's own `apiserver_watch_events_total` by kind counts
// what the watches carried.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubeApiserver, type TestKubeApiserver } from '../testing/kube-apiserver.js';
import { TestNode, inNs } from '../testing/node-fixture.js';
import { NsPortForwarder } from '../testing/ns-forwarder.js';
import { updateBenchmarkSection } from './report.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const PODS = Number(process.env.PODS ?? 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

function metrics(api: TestKubeApiserver): Promise<string> {
  const tls = { ca: readFileSync(api.pki.caFile), cert: readFileSync(api.pki.adminCertFile), key: readFileSync(api.pki.adminKeyFile) };
  return new Promise((resolve, reject) => {
    const req = request(`${api.url}/metrics`, tls, (res) => {
      let t = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (t += d));
      res.on('end', () => resolve(t));
    });
    req.on('error', reject);
    req.end();
  });
}

function watchEvents(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_watch_events_total{')) continue;
    const kind = /resource="([^"]*)"/.exec(line)?.[1] ?? /kind="([^"]*)"/.exec(line)?.[1] ?? '?';
    m.set(kind, (m.get(kind) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return m;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-bench-agentmem-'));
  let api: TestKubeApiserver | undefined;
  let node: TestNode | undefined;
  let fwd: NsPortForwarder | undefined;
  const rows: string[] = [];
  let events = '';
  try {
    api = await startKubeApiserver({ extraArgs: ['--feature-gates=APIServerIdentity=false'] });
    const kubectl = (args: string[], input?: unknown) => api!.kubectl(args, input === undefined ? undefined : JSON.stringify(input));
    await kubectl(['apply', '-f', join(ROOT, 'manifests/crds.yaml')]);
    await kubectl(['wait', '--for=condition=Established', '--all', 'crd', '--timeout=120s']);
    await kubectl(['create', '-f', '-'], {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        ...['worker01', 'worker02'].map((name) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name } } })),
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'mem' } },
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'mem' } },
      ],
    });
    node = new TestNode({
      nodeName: 'worker01',
      datastoreEnv: { DATASTORE_TYPE: 'kubernetes', KUBECONFIG: api.kubeconfig },
      env: { FELIX_HEALTHENABLED: 'true', CLUSTER_TYPE: 'k8s,bgp' },
    });
    node.setUp();
    fwd = new NsPortForwarder(node.hostNs, api.port, dir);
    await fwd.start();
    const readiness = (): number => {
      try {
        return Number(inNs(node!.hostNs, [process.execPath, '-e',
          "require('http').get('http://127.0.0.1:9099/readiness',r=>{process.stdout.write(String(r.statusCode));r.resume()}).on('error',()=>process.stdout.write('0'))"]));
      } catch {
        return 0;
      }
    };
    await node.startAgent(60_000);
    for (let t = 0; t < 300 && readiness() !== 200; t++) await sleep(300);
    if (readiness() !== 200) throw new Error(`agent not ready:\n${node.agentLog.slice(-3000)}`);
    await sleep(5000);
    const pid = node.agentPid!;
    const rss0 = rssKiB(pid);
    const ev0 = watchEvents(await metrics(api));
    // 1,000 Pods, half on this node (each one a WorkloadEndpoint the agent programs), with the
    // addresses Calico's CNI annotates.
    const pods = Array.from({ length: PODS }, (_, i) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `p${i}`,
        namespace: 'mem',
        labels: { app: `a${i % 10}` },
        annotations: { 'cni.projectcalico.org/podIP': `10.233.${64 + Math.floor(i / 250)}.${i % 250}/32`, 'cni.projectcalico.org/podIPs': `10.233.${64 + Math.floor(i / 250)}.${i % 250}/32` },
      },
      spec: { nodeName: i % 2 === 0 ? 'worker01' : 'worker02', containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10' }] },
    }));
    const t0 = Date.now();
    for (let i = 0; i < PODS; i += 250) await kubectl(['create', '-f', '-'], { apiVersion: 'v1', kind: 'List', items: pods.slice(i, i + 250) });
    const created = Date.now() - t0;
    // Settle: until RSS stops growing for 10 s (max 120 s).
    let peak = rssKiB(pid);
    let stable = 0;
    for (let t = 0; t < 120 && stable < 10; t++) {
      await sleep(1000);
      const r = rssKiB(pid);
      if (r > peak) {
        peak = r;
        stable = 0;
      } else stable++;
    }
    const rss1 = rssKiB(pid);
    const ev1 = watchEvents(await metrics(api));
    const d = (k: string) => (ev1.get(k) ?? 0) - (ev0.get(k) ?? 0);
    const kinds = [...ev1.keys()].filter((k) => d(k) > 0).sort();
    // A handful per kind are bookmarks to the API server's own informers: summarised.
    const small = kinds.filter((k) => d(k) < 10);
    events = [...kinds.filter((k) => d(k) >= 10).map((k) => `${k}: ${d(k)}`), `${small.length} other kinds: ${Math.max(0, ...small.map(d))} or fewer each (bookmarks, the API server's own informers)`].join('; ');
    rows.push(`| agent ready, 0 pods | ${(rss0 / 1024).toFixed(1)} | – |`);
    rows.push(`| ${PODS} pods (${PODS / 2} on the agent's node) created in ${(created / 1000).toFixed(1)} s, settled | ${(rss1 / 1024).toFixed(1)} (peak ${(peak / 1024).toFixed(1)}) | ${(((rss1 - rss0) / PODS)).toFixed(1)} KiB per pod |`);
    console.log(rows.join('\n'));
    console.log(`watch events sent by the API server while the pods were created: ${events}`);
  } finally {
    await node?.stop();
    await fwd?.close();
    await api?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  if (process.argv.includes('--write')) {
    updateBenchmarkSection(
      'kdd-agent-memory',
      `## Agent memory on kubernetes with ${PODS} pods in the API\n\nReproduce: \`npm run build && sudo node dist/bench/kdd-agent-memory.js --write\`\n\n` +
        `tortie-node (DATASTORE_TYPE=kubernetes) in a network namespace of its own, kube-apiserver v1.34 + etcd on loopback reached through a forwarder. ` +
        `RSS = VmRSS of the agent's PID: once ready with no pods, then after ${PODS} Pods (with Calico's podIP annotations, half with nodeName = the agent's node, ` +
        `half on another node) are created with kubectl in batches of 250 and RSS has not grown for 10 s.\n\n` +
        `| state | agent RSS (MiB) | growth |\n|---|---|---|\n${rows.join('\n')}\n\n` +
        `Watch events the API server sent (its \`apiserver_watch_events_total\`, all watchers, diffed around the pod creation): ${events}.\n`,
    );
  }
}

await main();
