// The classic lab on the Kubernetes datastore (`up --datastore kubernetes`), through bin/tortie-lab as
// an operator runs it (root only; a lab in its own tl-<unique>-* namespaces, state in a temporary
// TORTIE_LAB_DIR, `down` in after): a real kube-apiserver v1.34 with its etcd, the nodes as Node
// objects the agents register onto, pods as Pod objects (their WorkloadEndpoints and profiles derived
// by the kubernetes backend from Pods, Namespaces and ServiceAccounts), and all 31 truth tables with
// real packets, every policy created with the real kubectl.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabState } from './pkg/state.js';
import { netnsList, pidAlive } from './pkg/sys.js';
import { podCniArgs } from './pkg/lab.js';
import { kubectlDocument, nodeObject, podObject } from './pkg/kdd.js';
import { missingForKdd } from './pkg/kdd.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const LAB = join(ROOT, 'bin', 'tortie-lab');
const CASES = join(ROOT, 'libcalico-go', 'lib', 'policy', 'testdata', 'cases');
const missing = missingForKdd();
const skip =
  process.getuid?.() !== 0 ? 'needs root (network namespaces)'
  : !existsSync(LAB) ? 'bin/tortie-lab not built (npm run build)'
  : missing.length > 0 ? `${missing.join(', ')} not built (scripts/build-kubernetes.sh)`
  : false;

function run(env: NodeJS.ProcessEnv, args: string[], timeout = 180_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(LAB, args, { env, timeout, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('pure: API objects and kubectl documents of the kubernetes-datastore lab', () => {
  it('a Calico GlobalNetworkPolicy becomes its crd.projectcalico.org/v1 object, as the backend stores it', () => {
    const gnp = { apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'deny-a' }, spec: { selector: "pod == 'a'", types: ['Ingress'], ingress: [{ action: 'Deny' }] } };
    const o = kubectlDocument(gnp) as { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; annotations: Record<string, string> }; spec: Record<string, unknown> };
    assert.equal(o.apiVersion, 'crd.projectcalico.org/v1');
    assert.equal(o.kind, 'GlobalNetworkPolicy');
    // Tiered name: a dot-less policy name belongs to tier default.
    assert.equal(o.metadata.name, 'default.deny-a');
    assert.equal(o.metadata.labels, undefined);
    assert.ok(o.metadata.annotations['projectcalico.org/metadata'], 'v3 metadata kept in the annotation');
    assert.equal(o.spec.selector, "pod == 'a'");
    assert.deepEqual(o.spec.ingress, [{ action: 'Deny' }]);
  });

  it('a policy in another tier keeps its name and gets the tier label; a namespaced one its namespace', () => {
    const o = kubectlDocument({ apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'security.deny' }, spec: { tier: 'security', selector: 'all()', ingress: [{ action: 'Pass' }] } }) as { metadata: { name: string; labels?: Record<string, string> } };
    assert.equal(o.metadata.name, 'security.deny');
    assert.deepEqual(o.metadata.labels, { 'projectcalico.org/tier': 'security' });
    const np = kubectlDocument({ apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy', metadata: { name: 'allow-b', namespace: 'x' }, spec: { selector: 'all()' } }) as { kind: string; metadata: { name: string; namespace?: string } };
    assert.deepEqual([np.kind, np.metadata.name, np.metadata.namespace], ['NetworkPolicy', 'default.allow-b', 'x']);
  });

  it('a Kubernetes NetworkPolicy goes as it is; an invalid Calico document fails naming the field', () => {
    const knp = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'deny', namespace: 'x' }, spec: { podSelector: {} } };
    assert.equal(kubectlDocument(knp), knp);
    assert.throws(() => kubectlDocument({ apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'bad' }, spec: { selector: 'pod ==' } }), /selector/);
  });

  it("Node, Pod and the kubelet's CNI_ARGS", () => {
    const n = nodeObject({ name: 'node1', ns: 'tl-x-node1', address: '10.0.0.11', subnet: 0, lanIf: 'n0' }) as { status: { addresses: unknown[] } };
    assert.deepEqual(n.status.addresses[0], { type: 'InternalIP', address: '10.0.0.11' });
    const p = podObject({ namespace: 'x', name: 'a', node: 'node2', labels: { pod: 'a' }, serve: [{ port: 80, proto: 'tcp' }, { port: 81, proto: 'udp' }] }) as {
      spec: { nodeName: string; serviceAccountName: string; containers: { ports: unknown[] }[] };
    };
    assert.equal(p.spec.nodeName, 'node2');
    assert.equal(p.spec.serviceAccountName, 'default');
    assert.deepEqual(p.spec.containers[0]!.ports, [{ name: 'serve-80-tcp', containerPort: 80, protocol: 'TCP' }, { name: 'serve-81-udp', containerPort: 81, protocol: 'UDP' }]);
    assert.equal(podCniArgs({ namespace: 'x', name: 'a', containerId: 'c1', labels: { pod: 'a' }, serve: [{ port: 80, proto: 'tcp' }] }, true), 'IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=a;K8S_POD_INFRA_CONTAINER_ID=c1');
  });
});

interface Wep {
  metadata: { labels?: Record<string, string> };
  spec: { pod?: string; profiles?: string[]; ports?: { name: string; port: number; protocol: string }[] };
}

describe('tortie-lab up --datastore kubernetes: real kube-apiserver, 31 truth tables through kubectl', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-kdd-test-'));
  const env = { ...process.env, TORTIE_LAB_DIR: dir };
  const name = `k${randomBytes(3).toString('hex')}`;
  const lab = (...args: string[]) => run(env, args);
  const ok = async (...args: string[]) => {
    const r = await lab(...args);
    assert.equal(r.code, 0, `tortie-lab ${args.join(' ')} → ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const kubectlJson = async <T>(...args: string[]) => JSON.parse(await ok('kubectl', name, '--', ...args, '-o', 'json')) as T;
  const state = () => JSON.parse(readFileSync(join(dir, name, 'state.json'), 'utf8')) as LabState;
  let last: LabState | undefined;

  before(async () => {
    await ok('up', '--name', name, '--nodes', '3', '--datastore', 'kubernetes');
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

  it('the nodes are Kubernetes Nodes, registered onto by their agents; the pool and CRDs are in the API', async () => {
    const nodes = await kubectlJson<{ items: { metadata: { name: string; annotations?: Record<string, string> }; status: { addresses: { type: string; address: string }[]; conditions?: { type: string; status: string }[] } }[] }>('get', 'nodes');
    assert.deepEqual(nodes.items.map((n) => n.metadata.name).sort(), ['node1', 'node2', 'node3']);
    for (const [i, n] of nodes.items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)).entries()) {
      assert.equal(n.status.addresses.find((a) => a.type === 'InternalIP')?.address, `10.0.0.${11 + i}`);
      // Written by tortie-node's startup (calico-node's) onto the existing Node.
      assert.equal(n.metadata.annotations?.['projectcalico.org/IPv4Address'], `10.0.0.${11 + i}/24`);
      assert.equal(n.status.conditions?.find((c) => c.type === 'NetworkUnavailable')?.status, 'False');
    }
    const pools = await kubectlJson<{ items: { metadata: { name: string }; spec: { cidr: string } }[] }>('get', 'ippools.crd.projectcalico.org');
    assert.deepEqual(pools.items.map((p) => [p.metadata.name, p.spec.cidr]), [['default-ipv4-ippool', '10.233.64.0/18']]);
  });

  it("a pod's WorkloadEndpoint and profiles are derived from its Pod, Namespace and ServiceAccount objects", async () => {
    assert.match(await ok('ns', 'add', name, 'shop', '--labels', 'team=blue'), /Namespace object/);
    await ok('pod', 'add', name, 'node2', 'shop/web', '--labels', 'app=web', '--serve', '80,53/udp');
    const pod = await kubectlJson<{ spec: { nodeName: string }; metadata: { annotations?: Record<string, string> } }>('-n', 'shop', 'get', 'pod', 'web');
    assert.equal(pod.spec.nodeName, 'node2');
    // The CNI's pod-status patch (Calico's annotations) carries the address.
    const ip = state().pods['shop/web']!.ip!;
    assert.equal(pod.metadata.annotations?.['cni.projectcalico.org/podIP'], `${ip}/32`);
    const list = JSON.parse(await ok('ctl', name, '--', 'get', 'workloadendpoints', '-n', 'shop', '-o', 'json')) as { items?: Wep[] } | Wep[];
    const items = Array.isArray(list) ? list : list.items ?? [list as unknown as Wep];
    const wep = items.find((w) => w.spec.pod === 'web');
    assert.ok(wep, 'workload endpoint for shop/web');
    assert.deepEqual(wep.spec.profiles, ['kns.shop', 'ksa.shop.default']);
    assert.equal(wep.metadata.labels?.app, 'web');
    assert.equal(wep.metadata.labels?.['projectcalico.org/namespace'], 'shop');
    assert.deepEqual(wep.spec.ports?.map((p) => [p.name, p.port, p.protocol]), [['serve-80-tcp', 80, 'TCP'], ['serve-53-udp', 53, 'UDP']]);
    const prof = JSON.parse(await ok('ctl', name, '--', 'get', 'profile', 'kns.shop', '-o', 'json')) as { spec: { labelsToApply?: Record<string, string> } };
    assert.equal(prof.spec.labelsToApply?.['pcns.team'], 'blue');
    // A label set on the Pod with kubectl reaches the endpoint: nothing else holds the labels.
    await ok('kubectl', name, '--', '-n', 'shop', 'label', 'pod', 'web', 'extra=yes');
    const deadline = Date.now() + 20_000;
    for (;;) {
      const w = JSON.parse(await ok('ctl', name, '--', 'get', 'workloadendpoint', '-n', 'shop', 'node2-k8s-web-eth0', '-o', 'json')) as Wep;
      if (w.metadata.labels?.extra === 'yes') break;
      assert.ok(Date.now() < deadline, `label extra=yes not on the endpoint: ${JSON.stringify(w.metadata.labels)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    // A Pod made with kubectl beforehand is not the lab's: `pod add` of that name is refused and leaves it.
    await ok('kubectl', name, '--', '-n', 'shop', 'run', 'mine', '--image=registry.k8s.io/pause:3.10.1', '--overrides={"spec":{"nodeName":"node1"}}');
    const refused = await lab('pod', 'add', name, 'node1', 'shop/mine');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /already exists/);
    assert.equal(state().pods['shop/mine'], undefined);
    await ok('kubectl', name, '--', '-n', 'shop', 'get', 'pod', 'mine');
    await ok('pod', 'del', name, 'shop/web');
    const gone = await lab('kubectl', name, '--', '-n', 'shop', 'get', 'pod', 'web');
    assert.notEqual(gone.code, 0, 'the Pod object is deleted with the pod');
  });

  it('all 31 truth tables pass with real packets, every policy created with kubectl', async () => {
    const files = readdirSync(CASES).filter((f) => f.endsWith('.yaml'));
    assert.equal(files.length, 31);
    const t0 = Date.now();
    const r = await run(env, ['truth', name, CASES, '--json', '--keep'], 600_000);
    const out = JSON.parse(r.stdout) as { ok: boolean; cases: { name: string; ok: boolean; probes: { probe: string; ok: boolean; mismatches: unknown[] }[] }[] };
    const failed = out.cases.filter((c) => !c.ok);
    assert.deepEqual(failed.map((c) => ({ name: c.name, probes: c.probes.filter((p) => !p.ok) })), [], r.stderr);
    assert.equal(out.cases.length, 31);
    assert.equal(r.code, 0);
    console.log(`# 31/31 truth tables on --datastore kubernetes in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // --keep: the last case's GlobalNetworkPolicy is in the API as the custom resource kubectl made.
    const gnps = await kubectlJson<{ items: { metadata: { name: string; managedFields?: { manager: string }[] } }[] }>('get', 'globalnetworkpolicies.crd.projectcalico.org', '--show-managed-fields');
    const gnp = gnps.items.find((g) => g.metadata.name === 'default.not-80');
    assert.ok(gnp, `default.not-80 in ${JSON.stringify(gnps.items.map((g) => g.metadata.name))}`);
    assert.ok(gnp.metadata.managedFields?.some((m) => m.manager.startsWith('kubectl')), `written by kubectl: ${JSON.stringify(gnp.metadata.managedFields?.map((m) => m.manager))}`);
  });
});
