// The throwaway control plane against the real binaries built by scripts/build-kubernetes.sh:
// kubectl (the real one) talks to kube-apiserver backed by the built etcd, and everything started
// is gone after stop().
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
  ETCD_VERSION_DEFAULT,
  K8S_VERSION_DEFAULT,
  kubernetesBinaries,
  kubernetesBuild,
  missingKubernetesBinaries,
  startKubeApiserver,
  type TestKubeApiserver,
} from './kube-apiserver.js';

const root = new URL('../..', import.meta.url).pathname;

test('the helper looks where scripts/build-kubernetes.sh builds, at its default versions', () => {
  const script = readFileSync(`${root}/scripts/build-kubernetes.sh`, 'utf8');
  assert.match(script, new RegExp(`K8S_VERSION="\\$\\{TORTIE_K8S_VERSION:-${K8S_VERSION_DEFAULT.replace(/\./g, '\\.')}\\}"`));
  assert.match(script, new RegExp(`ETCD_VERSION="\\$\\{TORTIE_ETCD_VERSION:-${ETCD_VERSION_DEFAULT.replace(/\./g, '\\.')}\\}"`));
  assert.match(script, /CACHE="\$\{TORTIE_CACHE:-\/var\/cache\/tortie\}"/);
  const b = kubernetesBinaries({ TORTIE_CACHE: '/c' });
  assert.equal(b.kubeApiserver, `/c/k8s/${K8S_VERSION_DEFAULT}/bin/kube-apiserver`);
  assert.equal(b.kubectl, `/c/k8s/${K8S_VERSION_DEFAULT}/bin/kubectl`);
  assert.equal(b.etcd, `/c/etcd/${ETCD_VERSION_DEFAULT}/bin/etcd`);
  assert.equal(kubernetesBinaries({ TORTIE_CACHE: '/c', TORTIE_K8S_VERSION: 'v1.34.3' }).kubelet, '/c/k8s/v1.34.3/bin/kubelet');
});

const missing = missingKubernetesBinaries(['kubeApiserver', 'kubectl', 'etcd']);
const skip = missing.length > 0 ? `needs the Kubernetes build (scripts/build-kubernetes.sh): ${missing.join(', ')} not built` : false;

describe('a real kube-apiserver and etcd, driven by the real kubectl', { skip, timeout: 300_000 }, () => {
  let api: TestKubeApiserver | undefined;
  const { k8sVersion } = kubernetesBuild();

  before(async () => {
    api = await startKubeApiserver();
  });
  after(async () => {
    await api?.stop();
  });

  test('kubectl version reports the built version on both sides', async () => {
    const { stdout } = await api!.kubectl(['version', '-o', 'json']);
    const v = JSON.parse(stdout) as { clientVersion: { gitVersion: string; major: string; minor: string; gitTreeState: string }; serverVersion: { gitVersion: string; major: string; minor: string } };
    assert.equal(v.clientVersion.gitVersion, k8sVersion);
    assert.equal(v.serverVersion.gitVersion, k8sVersion);
    const minor = k8sVersion.split('.')[1];
    assert.equal(v.clientVersion.major, '1');
    assert.equal(v.clientVersion.minor, minor);
    assert.equal(v.serverVersion.minor, minor);
    assert.equal(v.clientVersion.gitTreeState, 'clean');
    const plain = await api!.kubectl(['version']);
    assert.match(plain.stdout, new RegExp(`Client Version: ${k8sVersion.replace(/\./g, '\\.')}\\n`));
    assert.match(plain.stdout, new RegExp(`Server Version: ${k8sVersion.replace(/\./g, '\\.')}\\n`));
  });

  test('kubectl get namespaces lists the system namespaces', async () => {
    const { stdout } = await api!.kubectl(['get', 'namespaces', '-o', 'name']);
    const names = stdout.trim().split('\n');
    for (const ns of ['namespace/default', 'namespace/kube-system', 'namespace/kube-public']) {
      assert.ok(names.includes(ns), `${ns} missing from:\n${stdout}`);
    }
  });

  test('a ConfigMap created through kubectl reads back through kubectl', async () => {
    const cm = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'tortie-probe', namespace: 'default', labels: { app: 'tortie' } },
      data: { greeting: 'hello from tortie', pool: '10.233.64.0/18' },
    };
    const created = await api!.kubectl(['create', '-f', '-'], JSON.stringify(cm));
    assert.match(created.stdout, /configmap\/tortie-probe created/);
    const { stdout } = await api!.kubectl(['get', 'configmap', 'tortie-probe', '-n', 'default', '-o', 'json']);
    const got = JSON.parse(stdout) as { data: Record<string, string>; metadata: { uid: string; resourceVersion: string; labels: Record<string, string> } };
    assert.deepEqual(got.data, cm.data);
    assert.deepEqual(got.metadata.labels, { app: 'tortie' });
    assert.ok(got.metadata.uid && got.metadata.resourceVersion, 'stored by the apiserver (uid, resourceVersion)');
    const jp = await api!.kubectl(['get', 'configmap', 'tortie-probe', '-o', 'jsonpath={.data.greeting}']);
    assert.equal(jp.stdout, 'hello from tortie');
    const listed = await api!.kubectl(['get', 'configmaps', '-l', 'app=tortie', '-o', 'name']);
    assert.equal(listed.stdout.trim(), 'configmap/tortie-probe');
  });

  test('the admin identity is system:masters and RBAC is in force', async () => {
    const who = await api!.kubectl(['auth', 'whoami', '-o', 'json']);
    const st = JSON.parse(who.stdout) as { status: { userInfo: { username: string; groups: string[] } } };
    assert.equal(st.status.userInfo.username, 'tortie-admin');
    assert.ok(st.status.userInfo.groups.includes('system:masters'));
    const anon = await api!.kubectl(['auth', 'can-i', 'list', 'secrets', '--as', 'nobody', '-A'])
      .then((r) => r.stdout, (e: Error) => e.message);
    assert.match(anon, /no/);
  });

  test('stop() ends etcd and kube-apiserver and removes the directory', async () => {
    const { pids, dir } = api!;
    await api!.stop();
    for (const pid of [pids.apiserver, pids.etcd]) {
      assert.throws(() => process.kill(pid, 0), /ESRCH/, `process ${pid} still running`);
    }
    assert.equal(existsSync(dir), false);
  });
});
