// What the Kubernetes datastore costs a short-lived process (the exec'd tortie-ipam opens the
// datastore on every CNI ADD/DEL): fresh `node` processes that open the backend, read one key twice
// and exit, on kubernetes (a real kube-apiserver from the build cache, manifests/crds.yaml applied)
// and on the embedded store, side by side, plus a bare `node -e ''` for Node's own start-up.
//
//   npm run build && node dist/bench/kdd-client-cost.js [--write] [--n 15]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { openEmbedded } from '../libcalico-go/lib/backend/embedded/embedded.js';
import { startKubeApiserver } from '../testing/kube-apiserver.js';
import { median, pct } from './lab-util.js';
import { updateBenchmarkSection } from './report.js';

const nArg = process.argv.indexOf('--n');
const N = nArg > 0 ? Number(process.argv[nArg + 1]) : 15;
const CHILD = fileURLToPath(new URL('./kdd-client-cost-child.js', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));
const POOL = { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'default-pool' }, spec: { cidr: '10.233.64.0/18', blockSize: 24 } };

type Phases = Record<string, number>;

function run(kind: string, arg: string): { wall: number; phases: Phases } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CHILD, kind, arg], { encoding: 'utf8' });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${kind} child failed: ${r.stderr}`);
  return { wall, phases: JSON.parse(r.stdout.trim().split('\n').pop()!) as Phases };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-bench-kdd-cost-'));
  const api = await startKubeApiserver();
  try {
    await api.kubectl(['apply', '-f', `${root}manifests/crds.yaml`]);
    await api.kubectl(['wait', '--for=condition=Established', '--all', 'crd', '--timeout=120s']);
    const path = join(dir, 'store.db');
    const e = openEmbedded(path);
    await e.apply('/calico/resources/v3/projectcalico.org/ippools/default-pool', JSON.stringify(POOL));
    await e.close();
    execFileSync(process.execPath, [CHILD, 'kubernetes', api.kubeconfig]); // warm the page cache
    const { openKubernetes } = await import('../libcalico-go/lib/backend/kubernetes/kubernetes.js');
    const k = await openKubernetes({ kubeconfig: api.kubeconfig });
    await k.apply('/calico/resources/v3/projectcalico.org/ippools/default-pool', JSON.stringify(POOL));
    await k.close();

    const bare: number[] = [];
    const emb: { wall: number; phases: Phases }[] = [];
    const kdd: { wall: number; phases: Phases }[] = [];
    const full: { wall: number; phases: Phases }[] = [];
    for (let i = 0; i < N; i++) {
      full.push(run('full-client-node', ''));
      const t0 = performance.now();
      spawnSync(process.execPath, ['-e', '']);
      bare.push(performance.now() - t0);
      emb.push(run('embedded', path));
      kdd.push(run('kubernetes', api.kubeconfig));
    }
    const f = (x: number) => x.toFixed(1);
    const cells = (xs: number[]) => `${f(median(xs))} | ${f(pct(xs, 90))}`;
    const ph = (rs: { phases: Phases }[], p: string) => rs.map((r) => r.phases[p]);
    const row = (what: string, e: number[] | null, k: number[]) => `| ${what} | ${e ? cells(e) : '— | —'} | ${cells(k)} |`;
    const body = [
      '## Kubernetes datastore: cost to a short-lived process (tortie-ipam)',
      '',
      'Reproduce: `npm run build && node dist/bench/kdd-client-cost.js --write`',
      '',
      `${N} fresh \`node\` processes per datastore, alternating, each opening the datastore through \`openBackend\` (as tortie-ipam does), reading one key twice and closing; kube-apiserver v1.34 on loopback with manifests/crds.yaml, admin client certificate. \`@kubernetes/client-node\` is imported only when the kubernetes backend is opened, so the embedded column does not load it. Bare \`node -e ''\`: median ${f(median(bare))} ms, p90 ${f(pct(bare, 90))} ms.`,
      '',
      '| phase (ms) | embedded median | p90 | kubernetes median | p90 |',
      '|---|---|---|---|---|',
      row('import Tortie backend code (open-backend)', ph(emb, 'importBackendCode'), ph(kdd, 'importBackendCode')),
      row('open (SQLite file / kubeconfig, incl. the client-node parts used)', ph(emb, 'open'), ph(kdd, 'open')),
      row('first get (TLS handshake + request)', ph(emb, 'firstRequest'), ph(kdd, 'firstRequest')),
      row('second get (kept-alive connection)', ph(emb, 'secondRequest'), ph(kdd, 'secondRequest')),
      row('whole process, spawn to exit', emb.map((r) => r.wall), kdd.map((r) => r.wall)),
      '',
      `For comparison, importing \`@kubernetes/client-node\`'s index (its KubeConfig class pulls in the whole generated API) in the same kind of process: median ${f(median(ph(full, 'importClientNode')))} ms, p90 ${f(pct(ph(full, 'importClientNode'), 90))} ms, whole process median ${f(median(full.map((r) => r.wall)))} ms. That is why the backend reads kubeconfigs with client-node's config_types/exec_auth/file_auth modules and takes the full KubeConfig only for auth-provider users (libcalico-go/lib/backend/kubernetes/client.ts).`,
      '',
    ].join('\n');
    console.log(body);
    if (process.argv.includes('--write')) updateBenchmarkSection('kdd-client-cost', body);
  } finally {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
