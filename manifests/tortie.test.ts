// manifests/tortie.yaml, read as the API server and the kubelet will: every setting it gives is one
// Tortie reads (no silently ignored variable), the probes are flags tortie-node accepts, the
// ConfigMap keys it references exist, the image is this build's, the CRDs are gen-crds.mjs's.
// (node/pkg/install-kdd.test.ts applies it to a real kube-apiserver and runs the agent with its RBAC.)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadAll } from 'js-yaml';
import { parseAgentConfig } from '../node/pkg/config.js';
import { parseProbeArgs } from '../node/pkg/probe.js';
import { envSettings } from '../kube-controllers/pkg/config.js';

const ROOT = new URL('../../', import.meta.url).pathname;
type Obj = Record<string, any>;
const docs = loadAll(readFileSync(join(ROOT, 'manifests/tortie.yaml'), 'utf8')).filter(Boolean) as Obj[];
const find = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata?.name === name);
const ds = find('DaemonSet', 'tortie-node')!;
const cm = find('ConfigMap', 'tortie-config')!;
const spec = ds.spec.template.spec as Obj;
const agent = (spec.containers as Obj[]).find((c) => c.name === 'tortie-node')!;
const install = (spec.initContainers as Obj[]).find((c) => c.name === 'install-cni')!;

/** A container's env as the kubelet resolves it on node `node`. */
function resolveEnv(c: Obj, node: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of c.env as Obj[]) {
    if (e.value !== undefined) out[e.name] = String(e.value);
    else if (e.valueFrom?.configMapKeyRef) {
      const { name, key } = e.valueFrom.configMapKeyRef;
      assert.equal(name, 'tortie-config', `${e.name}: ConfigMap`);
      assert.ok(key in cm.data, `${e.name}: key ${key} is in ConfigMap tortie-config`);
      out[e.name] = String(cm.data[key]);
    } else if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') out[e.name] = node;
    else assert.fail(`${e.name}: unexpected valueFrom ${JSON.stringify(e.valueFrom)}`);
  }
  return out;
}

/** Product source text of `dirs` (TypeScript, tests excluded). */
function sources(dirs: string[]): string {
  let text = '';
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) {
        if (n !== 'testdata') walk(p);
      } else if (n.endsWith('.ts') && !n.endsWith('.test.ts')) text += readFileSync(p, 'utf8');
    }
  };
  for (const d of dirs) walk(join(ROOT, d));
  return text;
}

describe('manifests/tortie.yaml', () => {
  it("has the KDD calico.yaml's objects, Tortie-named, in kube-system", () => {
    const names = docs.filter((d) => d.kind !== 'CustomResourceDefinition').map((d) => `${d.kind}/${d.metadata.name}`);
    assert.deepEqual(names.sort(), [
      'ClusterRole/tortie-cni-plugin',
      'ClusterRole/tortie-kube-controllers',
      'ClusterRole/tortie-node',
      'ClusterRoleBinding/tortie-cni-plugin',
      'ClusterRoleBinding/tortie-kube-controllers',
      'ClusterRoleBinding/tortie-node',
      'ConfigMap/tortie-config',
      'DaemonSet/tortie-node',
      'Deployment/tortie-kube-controllers',
      'ServiceAccount/tortie-cni-plugin',
      'ServiceAccount/tortie-kube-controllers',
      'ServiceAccount/tortie-node',
    ]);
    for (const d of docs) if (['ServiceAccount', 'ConfigMap', 'DaemonSet', 'Deployment'].includes(d.kind)) assert.equal(d.metadata.namespace, 'kube-system');
    assert.equal(docs.filter((d) => d.kind === 'CustomResourceDefinition').length, 19);
    assert.deepEqual(cm.data.calico_backend, 'bird');
    assert.deepEqual(cm.data.cluster_type, 'k8s,bgp');
  });

  it('its CRDs are those of scripts/gen-crds.mjs (one source of truth)', () => {
    execFileSync(process.execPath, [join(ROOT, 'scripts/gen-crds.mjs'), '--check'], { stdio: 'pipe' });
    const crds = loadAll(readFileSync(join(ROOT, 'manifests/crds.yaml'), 'utf8')).filter(Boolean) as Obj[];
    assert.deepEqual(docs.filter((d) => d.kind === 'CustomResourceDefinition'), crds);
  });

  it("the DaemonSet: hostNetwork, privileged, the seed's resources, this build's image, probes tortie-node accepts", () => {
    const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
    assert.equal(spec.hostNetwork, true);
    assert.equal(spec.serviceAccountName, 'tortie-node');
    for (const c of [agent, install]) {
      assert.equal(c.image, `tortie.local/tortie:${version}`);
      assert.equal(c.imagePullPolicy, 'IfNotPresent');
      assert.equal(c.securityContext.privileged, true);
    }
    assert.deepEqual(agent.resources, { requests: { cpu: '150m', memory: '64M' }, limits: { cpu: '300m', memory: '500M' } });
    const live = agent.livenessProbe.exec.command as string[];
    const ready = agent.readinessProbe.exec.command as string[];
    assert.deepEqual(live, ['/usr/bin/tortie-node', '-felix-live', '-bird-live']);
    assert.deepEqual(ready, ['/usr/bin/tortie-node', '-felix-ready', '-bird-ready']);
    assert.deepEqual(parseProbeArgs(live.slice(1))?.checks, ['-felix-live', '-bird-live']);
    assert.deepEqual(parseProbeArgs(ready.slice(1))?.checks, ['-felix-ready', '-bird-ready']);
    // The pod network namespaces the runtime passes, seen by the agent as they appear.
    const mounts = new Map((agent.volumeMounts as Obj[]).map((m) => [m.mountPath, m]));
    for (const p of ['/var/run/netns', '/run/containerd/io.containerd.grpc.v1.cri/netns']) assert.equal(mounts.get(p)?.mountPropagation, 'HostToContainer', p);
    const hostPaths = (spec.volumes as Obj[]).map((v) => v.hostPath?.path).sort();
    assert.deepEqual(hostPaths, ['/etc/cni/net.d', '/lib/modules', '/opt/cni/bin', '/run/containerd/io.containerd.grpc.v1.cri/netns', '/run/xtables.lock', '/var/lib/tortie', '/var/log/tortie/cni', '/var/run/netns', '/var/run/tortie']);
  });

  it('every variable given to tortie-node is one it reads: its configuration takes them all without a warning', () => {
    const env = resolveEnv(agent, 'worker01');
    const cfg = parseAgentConfig(env);
    assert.deepEqual(cfg.warnings, [], 'no FELIX_* accepted-but-unsupported, no other remark');
    assert.equal(cfg.nodeName, 'worker01');
    assert.equal(cfg.datastore.datastoreType, 'kubernetes');
    assert.deepEqual(cfg.clusterType, ['k8s', 'bgp']);
    assert.deepEqual(cfg.autodetection, { kind: 'kubernetes-internal-ip' });
    assert.equal(cfg.defaultPool.cidr, '10.233.64.0/18');
    assert.equal(cfg.defaultPool.blockSize, 24);
    assert.equal(cfg.felix.healthEnabled, true);
    assert.equal(cfg.felix.ipv6Support, false);
    // The others (not FELIX_*) are read by name in the agent's code (get('X') or env.X).
    const text = sources(['node', 'libcalico-go/lib/config']);
    for (const name of Object.keys(env).filter((n) => !n.startsWith('FELIX_'))) {
      assert.match(text, new RegExp(`['.]${name}\\b`), `tortie-node reads ${name}`);
    }
  });

  it('every variable given to install-cni is one tortie-install-cni reads', () => {
    const env = resolveEnv(install, 'worker01');
    const text = sources(['cni-plugin/pkg/install', 'cni-plugin/cmd']);
    for (const name of Object.keys(env)) assert.match(text, new RegExp(`['.]${name}\\b`), `tortie-install-cni reads ${name}`);
    assert.equal(env.CNI_CONF_NAME, '10-tortie.conflist');
    assert.equal(env.SLEEP, 'false');
  });

  it("tortie-kube-controllers: Calico's Deployment (one replica, Recreate, on the pod network), check-status probes, settings it accepts, its own least-privilege role", () => {
    const dep = find('Deployment', 'tortie-kube-controllers')!;
    const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
    assert.equal(dep.spec.replicas, 1);
    assert.equal(dep.spec.strategy.type, 'Recreate');
    const ps = dep.spec.template.spec as Obj;
    assert.equal(ps.hostNetwork, undefined, 'a pod of the pod network, as in KDD calico.yaml');
    assert.equal(ps.serviceAccountName, 'tortie-kube-controllers');
    assert.equal(ps.priorityClassName, 'system-cluster-critical');
    assert.deepEqual(dep.spec.selector.matchLabels, dep.spec.template.metadata.labels);
    const c = (ps.containers as Obj[])[0]!;
    assert.equal(c.image, `tortie.local/tortie:${version}`);
    assert.deepEqual(c.command, ['/usr/bin/tortie-kube-controllers']);
    assert.deepEqual(c.livenessProbe.exec.command, ['/usr/bin/tortie-kube-controllers', 'check-status', '-l']);
    assert.deepEqual(c.readinessProbe.exec.command, ['/usr/bin/tortie-kube-controllers', 'check-status', '-r']);
    const env = Object.fromEntries((c.env as Obj[]).map((e) => [e.name, String(e.value)]));
    assert.deepEqual(env, { ENABLED_CONTROLLERS: 'node', DATASTORE_TYPE: 'kubernetes' });
    assert.deepEqual(envSettings(env).controllers, ['node'], 'ENABLED_CONTROLLERS is accepted');
    // Its role: read Nodes/Pods, release IPAM, nothing of the agent's (no tokens, no node status).
    const role = find('ClusterRole', 'tortie-kube-controllers')!;
    const grants = new Set<string>();
    for (const r of role.rules as Obj[]) for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) grants.add(`${g}/${res}:${v}`);
    for (const g of ['/nodes:watch', '/pods:list', 'crd.projectcalico.org/ipamhandles:delete', 'crd.projectcalico.org/kubecontrollersconfigurations:get']) assert.ok(grants.has(g), g);
    for (const g of ['/serviceaccounts/token:create', '/nodes/status:patch', '/pods/status:patch', 'crd.projectcalico.org/ippools:create']) assert.ok(!grants.has(g), `not ${g}`);
    const binding = find('ClusterRoleBinding', 'tortie-kube-controllers')!;
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'tortie-kube-controllers', namespace: 'kube-system' }]);
  });
});
