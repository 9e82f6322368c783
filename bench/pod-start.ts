// Pod start latency on a real kubelet: 30 pods created at once on one node, each timed from the
// create request to the moment a watch sees it Ready, with Tortie installed from its manifest and,
// in the same run, with Debian's bridge + host-local as the node's CNI (the reference).
//
//   npm run build && node dist/bench/pod-start.js [--write] [--pods 30]     (as root)
//
// Each CNI gets its own one-node lab cluster (`tortie-lab up --kubernetes --nodes 1 --cni
// manifest|bridge`: kubelet, containerd, kube-proxy; the same images), one after the other. One warm-up
// pod first (the image's snapshot unpacked), then the pods as one `kubectl create` of a List; a
// `kubectl get pods -w` started before it prints each pod's Ready status as it changes, stamped on
// arrival. The Kubernetes SLO: p99 ≤ 5 s (create → running, image already present).
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubectlArgv, kubectlEnv } from '../lab/pkg/kube/cluster.js';
import type { LabState } from '../lab/pkg/state.js';
import { netnsList } from '../lab/pkg/sys.js';
import { updateBenchmarkSection } from './report.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const LAB = join(ROOT, 'bin', 'tortie-lab');
const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const PODS = Number(arg('pods') ?? '30');
const AGNHOST = 'registry.k8s.io/e2e-test-images/agnhost:2.56';
const dir = mkdtempSync(join(tmpdir(), 'tortie-bench-pod-start-'));
const env = { ...process.env, TORTIE_LAB_DIR: dir };

function lab(...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const c = execFile(LAB, args, { env, timeout: 600_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
    c.stdin?.end();
  });
}

async function k(name: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = execFile(LAB, ['kubectl', name, '--', ...args], { env, timeout: 300_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`kubectl ${args.join(' ')}: ${stdout}${stderr}`)) : resolve(stdout));
    c.stdin!.end(input ?? '');
  });
}

function pod(name: string, label: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { bench: label } },
    spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: AGNHOST, imagePullPolicy: 'Never', args: ['pause'] }] },
  };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

interface Result {
  p50: number;
  p99: number;
  max: number;
  allMs: number;
}

/** Creates `n` pods at once; ms from the create request to each pod's Ready seen by a watch. */
async function measure(name: string, n: number): Promise<Result> {
  // Warm-up: the image's snapshot unpacked, the node's first sandbox made.
  await k(name, ['create', '-f', '-'], JSON.stringify(pod('warmup', 'warmup')));
  await k(name, ['wait', '--for=condition=Ready', 'pod/warmup', '--timeout=180s']);
  await k(name, ['delete', 'pod', 'warmup', '--wait=true']);

  const s = JSON.parse(readFileSync(join(dir, name, 'state.json'), 'utf8')) as LabState;
  const argv = [...kubectlArgv(s), 'get', 'pods', '-l', 'bench=run', '-w', '-o', 'jsonpath={.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}'];
  const watch = spawn(argv[0]!, argv.slice(1), { env: kubectlEnv(s), stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Map<string, number>();
  let buf = '';
  let t0 = 0;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${ready.size}/${n} pods Ready after 300 s`)), 300_000);
    watch.stdout!.on('data', (d: Buffer) => {
      const now = performance.now();
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const [pname, status] = buf.slice(0, i).trim().split(' ');
        buf = buf.slice(i + 1);
        if (pname && status === 'True' && !ready.has(pname) && t0 > 0) ready.set(pname, now - t0);
        if (ready.size === n) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
  });
  try {
    await new Promise((r) => setTimeout(r, 1500)); // the watch is established
    const list = { apiVersion: 'v1', kind: 'List', items: Array.from({ length: n }, (_, i) => pod(`p${i}`, 'run')) };
    t0 = performance.now();
    await k(name, ['create', '-f', '-'], JSON.stringify(list));
    await done;
  } finally {
    watch.kill();
  }
  const xs = [...ready.values()];
  return { p50: pct(xs, 50), p99: pct(xs, 99), max: Math.max(...xs), allMs: Math.max(...xs) };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root (namespaces, cgroups)');
  if (!existsSync(LAB)) throw new Error(`${LAB} not built (npm run build)`);
  const load0 = loadavg()[0]!;
  const results: Record<string, Result> = {};
  for (const cni of ['manifest', 'bridge'] as const) {
    const name = `ps${randomBytes(3).toString('hex')}`;
    try {
      const u = await lab('up', '--kubernetes', '--nodes', '1', '--cni', cni, '--name', name);
      if (u.code !== 0) throw new Error(`up --cni ${cni} failed: ${u.out}`);
      results[cni] = await measure(name, PODS);
      console.log(`${cni}: p50 ${results[cni].p50.toFixed(0)} ms, p99 ${results[cni].p99.toFixed(0)} ms, all ${PODS} Ready in ${results[cni].allMs.toFixed(0)} ms`);
    } finally {
      const d = await lab('down', name);
      if (d.code !== 0) console.error(`down ${name}: ${d.out}`);
      const left = netnsList().filter((x) => x.startsWith(`tl-${name}-`));
      if (left.length > 0) console.error(`warning: namespaces left behind: ${left.join(', ')}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  const t = results.manifest!;
  const b = results.bridge!;
  const f = (x: number) => (x / 1000).toFixed(2);
  const body = [
    '## Pod start latency on a real kubelet (create → Ready)',
    '',
    'Reproduce (as root): `npm run build && scripts/build-images.sh --only tortie && node dist/bench/pod-start.js --write`',
    '',
    `${PODS} pods (agnhost \`pause\`, image present) created at once with one \`kubectl create\` on a one-node lab cluster (real kubelet v1.34.4, containerd 1.6.20, kube-proxy nftables), timed from the create request to a \`kubectl get pods -w\` seeing each Ready; one warm-up pod first. Tortie installed from \`manifests/tortie.yaml\` (\`tortie-lab up --kubernetes --nodes 1 --cni manifest\`) and, in the same run, Debian's \`bridge\` + \`host-local\` (\`--cni bridge\`). Kubernetes SLO: p99 ≤ 5 s. Load average at start: ${load0.toFixed(1)} (2 cores shared).`,
    '',
    '| CNI | p50 s | p99 s | all Ready, s |',
    '|---|---|---|---|',
    `| Tortie (manifest: tortie → tortie-node in its pod) | ${f(t.p50)} | ${f(t.p99)} | ${f(t.allMs)} |`,
    `| Debian bridge + host-local (reference) | ${f(b.p50)} | ${f(b.p99)} | ${f(b.allMs)} |`,
    `| ratio Tortie / reference | ${(t.p50 / b.p50).toFixed(2)} | ${(t.p99 / b.p99).toFixed(2)} | ${(t.allMs / b.allMs).toFixed(2)} |`,
    '',
  ].join('\n');
  console.log(body);
  if (process.argv.includes('--write')) updateBenchmarkSection('pod-start', body);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  rmSync(dir, { recursive: true, force: true });
  process.exit(1);
});
