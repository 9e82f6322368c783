// Namespaces, pod metadata on the WorkloadEndpoint, and truth-table cases with real packets, through
// bin/tortie-lab as an operator runs it (root only; a lab in its own tl-<unique>-* namespaces, state
// in a temporary TORTIE_LAB_DIR, `down` in after). Every case of the truth table runs with real
// packets between pods on different nodes, enforced by the agents' nftables tables, and must agree
// with the case's expected matrix (which the pure evaluator also meets: truth-table.test.ts).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabState } from './pkg/state.js';
import { netnsList, pidAlive } from './pkg/sys.js';
import { namespaceProfile, podCniArgs } from './pkg/lab.js';
import { POD_KEYS } from '../libcalico-go/lib/policy/truth-table.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const LAB = join(ROOT, 'bin', 'tortie-lab');
const CASES = join(ROOT, 'libcalico-go', 'lib', 'policy', 'testdata', 'cases');
const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : !existsSync(LAB) ? 'bin/tortie-lab not built (npm run build)' : false;

function run(env: NodeJS.ProcessEnv, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(LAB, args, { env, timeout: 180_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

interface Wep {
  metadata: { name: string; namespace: string; labels?: Record<string, string>; resourceVersion?: string };
  spec: { pod?: string; node?: string; profiles?: string[]; ports?: { name: string; port: number; protocol: string }[] };
}

describe('pure: namespace profile and pod CNI_ARGS', () => {
  it('kns.<ns> profile: allow-all, namespace labels as pcns.*, pcns.projectcalico.org/name', () => {
    assert.deepEqual(namespaceProfile('x', { ns: 'x', 'kubernetes.io/metadata.name': 'x' }), {
      apiVersion: 'projectcalico.org/v3',
      kind: 'Profile',
      metadata: { name: 'kns.x' },
      spec: {
        ingress: [{ action: 'Allow' }],
        egress: [{ action: 'Allow' }],
        labelsToApply: { 'pcns.ns': 'x', 'pcns.kubernetes.io/metadata.name': 'x', 'pcns.projectcalico.org/name': 'x' },
      },
    });
  });

  it('labels and named ports travel in CNI_ARGS', () => {
    const args = podCniArgs({ namespace: 'x', name: 'a', containerId: 'c1', labels: { pod: 'a', app: 'web' }, serve: [{ port: 80, proto: 'tcp' }, { port: 53, proto: 'udp' }] });
    assert.equal(args, 'IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=a;K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_LABELS=pod=a,app=web;K8S_POD_PORTS=serve-80-tcp:80/TCP,serve-53-udp:53/UDP');
    assert.equal(podCniArgs({ namespace: 'x', name: 'a', containerId: 'c1', labels: {}, serve: [] }), 'IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=a;K8S_POD_INFRA_CONTAINER_ID=c1');
  });
});

describe('tortie-lab ns add, pod metadata, truth', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-truth-test-'));
  const env = { ...process.env, TORTIE_LAB_DIR: dir };
  const name = `t${randomBytes(3).toString('hex')}`;
  const lab = (...args: string[]) => run(env, args);
  const ok = async (...args: string[]) => {
    const r = await lab(...args);
    assert.equal(r.code, 0, `tortie-lab ${args.join(' ')} → ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const state = () => JSON.parse(readFileSync(join(dir, name, 'state.json'), 'utf8')) as LabState;
  let last: LabState | undefined;

  before(async () => {
    await ok('up', '--name', name, '--nodes', '2');
  });

  after(async () => {
    if (existsSync(join(dir, name, 'state.json'))) {
      last = state();
      await lab('down', name);
    }
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(netnsList().filter((n) => n.startsWith(`tl-${name}-`)), [], 'no namespace left');
    for (const p of [...(last?.processes ?? []), ...Object.values(last?.pods ?? {}).flatMap((x) => x.servers)]) {
      assert.equal(pidAlive(p.pid, p.startTime), false, `${p.role} (PID ${p.pid}) still running`);
    }
  });

  it('ns add stores kns.<ns> with pcns labels (and again with new labels)', async () => {
    assert.match(await ok('ns', 'add', name, 'shop', '--labels', 'team=blue,kubernetes.io/metadata.name=shop'), /namespace shop: profile kns\.shop/);
    const prof = JSON.parse(await ok('ctl', name, '--', 'get', 'profile', 'kns.shop', '-o', 'json')) as { spec: Record<string, unknown> };
    assert.deepEqual(prof.spec.labelsToApply, { 'pcns.team': 'blue', 'pcns.kubernetes.io/metadata.name': 'shop', 'pcns.projectcalico.org/name': 'shop' });
    assert.deepEqual(prof.spec.ingress, [{ action: 'Allow' }]);
    assert.deepEqual(prof.spec.egress, [{ action: 'Allow' }]);
    await ok('ns', 'add', name, 'shop', '--labels', 'team=red');
    const again = JSON.parse(await ok('ctl', name, '--', 'get', 'profile', 'kns.shop', '-o', 'json')) as { spec: Record<string, unknown> };
    assert.deepEqual(again.spec.labelsToApply, { 'pcns.team': 'red', 'pcns.kubernetes.io/metadata.name': 'shop', 'pcns.projectcalico.org/name': 'shop' });
    assert.deepEqual(state().k8sNamespaces?.shop, { team: 'red' });
    assert.equal((await lab('ns', 'add', name, 'Bad_Name')).code, 1);
  });

  it("a pod's WorkloadEndpoint carries namespace, orchestrator and pod labels and named ports from its first version", async () => {
    await ok('pod', 'add', name, 'node2', 'shop/web', '--labels', 'app=web,tier=front', '--serve', '80,53/udp');
    const list = JSON.parse(await ok('ctl', name, '--', 'get', 'workloadendpoints', '-n', 'shop', '-o', 'json')) as { items?: Wep[] } | Wep[];
    const items = Array.isArray(list) ? list : list.items ?? [list as unknown as Wep];
    const wep = items.find((w) => w.spec.pod === 'web');
    assert.ok(wep, 'workload endpoint for shop/web');
    assert.deepEqual(wep.metadata.labels, { app: 'web', tier: 'front', 'projectcalico.org/namespace': 'shop', 'projectcalico.org/orchestrator': 'k8s' });
    assert.deepEqual(wep.spec.ports, [
      { name: 'serve-80-tcp', port: 80, protocol: 'TCP' },
      { name: 'serve-53-udp', port: 53, protocol: 'UDP' },
    ]);
    assert.deepEqual(wep.spec.profiles, ['kns.shop']);
    // A label the lab cannot pass in CNI_ARGS is refused before anything is made.
    const bad = await lab('pod', 'add', name, 'node1', 'shop/bad', '--labels', 'a=b;c');
    assert.equal(bad.code, 1);
    assert.equal(state().pods['shop/bad'], undefined);
    await ok('pod', 'del', name, 'shop/web');
    // A pod in a namespace never given to `ns add`: its kns.<ns> profile is made (and a pod in a
    // namespace that has one leaves it alone).
    await ok('pod', 'add', name, 'node1', 'other/p');
    const other = JSON.parse(await ok('ctl', name, '--', 'get', 'profile', 'kns.other', '-o', 'json')) as { spec: Record<string, unknown> };
    assert.deepEqual(other.spec.labelsToApply, { 'pcns.kubernetes.io/metadata.name': 'other', 'pcns.projectcalico.org/name': 'other' });
    assert.deepEqual(other.spec.ingress, [{ action: 'Allow' }]);
    await ok('pod', 'del', name, 'other/p');
  });

  it('truth: every case of the truth table passes with real packets, enforced by the agents', async () => {
    const n = readdirSync(CASES).filter((f) => f.endsWith('.yaml')).length;
    assert.ok(n >= 31, `${n} cases`);
    const out = await ok('truth', name, CASES, '--settle', '500');
    assert.match(out, /^case 01-allow-all-no-policy/m);
    assert.match(out, /^FROM \\ TO +x\/a +x\/b +x\/c +y\/a +y\/b +y\/c +z\/a +z\/b +z\/c$/m);
    assert.match(out, /^PASS 01-allow-all-no-policy$/m);
    assert.match(out, /^PASS 02-default-deny-ingress$/m);
    assert.match(out, new RegExp(`^${n}/${n} cases as expected$`, 'm'));
    assert.doesNotMatch(out, /^FAIL /m);
    assert.doesNotMatch(out, /not as expected|unexpected/i);
    // Denials are real: in the default-deny case nothing reaches x (48 of 72 pairs answer).
    assert.match(out, /^case 02-default-deny-ingress[\s\S]*?^y\/a +FAIL +FAIL +FAIL +- /m);
    assert.match(out, /^48\/72 pairs answered; all as expected$/m);
    const s = state();
    for (const key of POD_KEYS) {
      const pod = s.pods[key];
      assert.ok(pod?.ip, `${key} has an address`);
      assert.equal(pod.labels.pod, key.split('/')[1]);
    }
    assert.deepEqual(new Set(POD_KEYS.map((k) => s.pods[k]!.node)), new Set(['node1', 'node2']), 'pods spread over the nodes');
    const prof = JSON.parse(await ok('ctl', name, '--', 'get', 'profile', 'kns.y', '-o', 'json')) as { spec: { labelsToApply: Record<string, string> } };
    assert.deepEqual(prof.spec.labelsToApply, { 'pcns.ns': 'y', 'pcns.kubernetes.io/metadata.name': 'y', 'pcns.projectcalico.org/name': 'y' });
    // The last case's policies are gone afterwards.
    assert.doesNotMatch(await ok('ctl', name, '--', 'get', 'networkpolicy', '-A'), /knp\.default/);

    // Again on the same model (pods reused), --json: every pair of every probe reachable.
    const j = JSON.parse(await ok('truth', name, join(CASES, '01-allow-all-no-policy.yaml'), '--json')) as {
      ok: boolean;
      cases: { name: string; ok: boolean; probes: { probe: string; ok: boolean; matrix: Record<string, Record<string, boolean>> }[] }[];
    };
    assert.equal(j.ok, true);
    assert.deepEqual(j.cases[0]!.probes.map((p) => p.probe), ['80/TCP', '81/UDP']);
    for (const p of j.cases[0]!.probes) {
      for (const from of POD_KEYS) for (const to of POD_KEYS) if (from !== to) assert.equal(p.matrix[from]![to], true, `${p.probe} ${from} → ${to}`);
    }
  });

  it('truth refuses a bad case file before touching the lab', async () => {
    const r = await lab('truth', name, join(ROOT, 'package.json'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /probes must be a non-empty list|must be a YAML object/);
  });
});
