// Faults and bad input on the Kubernetes backend, against a real kube-apiserver: CRDs missing,
// the API unreachable, RBAC forbidding (a real client certificate without rights), bad
// credentials, invalid kubeconfigs, in-cluster configuration from a real service-account token,
// an expired watch revision, invalid objects.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CompactedError, DatastoreError, UnavailableError } from '../api.js';
import { resourceKey, blockKey, HANDLE_PREFIX } from '../keys.js';
import { parseCIDR } from '../../net/ip.js';
import { missingKubernetesBinaries, startKubeApiserver, writeKubeconfig, type TestKubeApiserver } from '../../../../testing/kube-apiserver.js';
import { KubeConfigError, MissingCRDError, UnauthorizedError } from './client.js';
import { openKubernetes, type KubernetesBackend } from './kubernetes.js';

const root = new URL('../../../../..', import.meta.url).pathname;
const missing = missingKubernetesBinaries(['kubeApiserver', 'kubectl', 'etcd', 'etcdctl']);
const skip = missing.length > 0 ? `needs the Kubernetes build (scripts/build-kubernetes.sh): ${missing.join(', ')} not built` : false;

const POOL = resourceKey('IPPool', 'p1');
const poolValue = JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p1' }, spec: { cidr: '10.9.0.0/16' } });

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function rejectsWith(p: Promise<unknown>, cls: new (...a: never[]) => Error, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e.name}: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

describe('kubernetes datastore faults against a real API server', { skip, timeout: 600_000 }, () => {
  let api: TestKubeApiserver;
  let dir: string;
  before(async () => {
    api = await startKubeApiserver();
    dir = mkdtempSync(join(tmpdir(), 'tortie-kdd-errors-'));
  });
  after(async () => {
    await api?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('without the CRDs: every call names the missing CRD and says to apply manifests/crds.yaml', async () => {
    const b = await openKubernetes({ kubeconfig: api.kubeconfig });
    try {
      const crd = /the CRD ippools\.crd\.projectcalico\.org is not installed; apply manifests\/crds\.yaml/;
      await rejectsWith(b.get(POOL), MissingCRDError, crd);
      await rejectsWith(b.create(POOL, poolValue), MissingCRDError, crd);
      await rejectsWith(b.list('/calico/resources/v3/projectcalico.org/ippools/'), MissingCRDError, crd);
      await rejectsWith(b.get(blockKey(parseCIDR('10.0.0.0/26')!)), MissingCRDError, /ipamblocks\.crd\.projectcalico\.org is not installed/);
      await rejectsWith(b.revision(), MissingCRDError, /clusterinformations\.crd\.projectcalico\.org is not installed/);
      const it = b.watch('/calico/resources/v3/projectcalico.org/ippools/', { afterRevision: '1' })[Symbol.asyncIterator]();
      await rejectsWith(it.next(), MissingCRDError, crd);
    } finally {
      await b.close();
    }
    await api.kubectl(['apply', '-f', `${root}manifests/crds.yaml`]);
    await api.kubectl(['wait', '--for=condition=Established', '--all', 'crd', '--timeout=120s']);
  });

  it('API server unreachable: UnavailableError naming the server', async () => {
    const port = await freePort();
    const kc = join(dir, 'unreachable.kubeconfig');
    writeKubeconfig(kc, `https://127.0.0.1:${port}`, api.pki.caFile, api.pki.adminCertFile, api.pki.adminKeyFile);
    const b = await openKubernetes({ kubeconfig: kc });
    try {
      await rejectsWith(b.get(POOL), UnavailableError, new RegExp(`Kubernetes API server https://127\\.0\\.0\\.1:${port} unreachable: ECONNREFUSED`));
      await rejectsWith(b.revision(), UnavailableError, /unreachable/);
      const it = b.watch('/calico/ipam/v2/', { afterRevision: '1' })[Symbol.asyncIterator]();
      await rejectsWith(it.next(), UnavailableError, /unreachable/);
    } finally {
      await b.close();
    }
  });

  it('an API server that accepts but never answers: UnavailableError after the request limit', async () => {
    const held: import('node:net').Socket[] = [];
    const silent = createServer((sock) => held.push(sock));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    const kc = join(dir, 'silent.kubeconfig');
    writeKubeconfig(kc, `https://127.0.0.1:${port}`, api.pki.caFile, api.pki.adminCertFile, api.pki.adminKeyFile);
    const b = await openKubernetes({ kubeconfig: kc });
    b.client.timeoutMs = 300;
    try {
      await rejectsWith(b.get(POOL), UnavailableError, /unreachable: ETIMEDOUT no answer within 300 ms/);
    } finally {
      await b.close();
      for (const s of held) s.destroy();
      silent.close();
    }
  });

  it('RBAC: a user without rights gets "forbidden" naming the verb and resource; granted rights work', async () => {
    const pki = join(dir, 'limited');
    mkdirSync(pki);
    const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: pki, stdio: 'pipe' });
    ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-subj', '/CN=tortie-limited', '-out', 'req.csr']);
    writeFileSync(join(pki, 'ext'), 'keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
    ossl(['x509', '-req', '-in', 'req.csr', '-CA', api.pki.caFile, '-CAkey', api.pki.caKeyFile, '-CAcreateserial', '-days', '1', '-extfile', 'ext', '-out', 'cert.pem']);
    const kc = join(dir, 'limited.kubeconfig');
    writeKubeconfig(kc, api.url, api.pki.caFile, join(pki, 'cert.pem'), join(pki, 'key.pem'), 'tortie-limited');
    // Only ippools get/list, as a restricted ClusterRole would allow.
    await api.kubectl(['create', 'clusterrole', 'tortie-limited', '--verb=get,list', '--resource=ippools.crd.projectcalico.org']);
    await api.kubectl(['create', 'clusterrolebinding', 'tortie-limited', '--clusterrole=tortie-limited', '--user=tortie-limited']);
    const b = await openKubernetes({ kubeconfig: kc });
    try {
      await rejectsWith(b.list('/calico/ipam/v2/assignment/'), UnauthorizedError, /forbidden: cannot list ipamblocks\.crd\.projectcalico\.org: .*tortie-limited/);
      await rejectsWith(b.get(blockKey(parseCIDR('10.0.0.0/26')!)), UnauthorizedError, /forbidden: cannot get ipamblocks\.crd\.projectcalico\.org/);
      await rejectsWith(b.create(POOL, poolValue), UnauthorizedError, /forbidden: cannot create ippools\.crd\.projectcalico\.org/);
      await rejectsWith(b.create(`${HANDLE_PREFIX}h1`, '{"block":{}}'), UnauthorizedError, /forbidden: cannot create ipamhandles\.crd\.projectcalico\.org/);
      assert.equal(await b.get(POOL), null, 'what RBAC allows works');
      assert.deepEqual((await b.list('/calico/resources/v3/projectcalico.org/ippools/')).items, []);
    } finally {
      await b.close();
    }
  });

  it('credentials the API server does not accept: "unauthorized"', async () => {
    const b = await openKubernetes({ apiEndpoint: api.url, caFile: api.pki.caFile, token: 'not-a-valid-token' });
    try {
      await rejectsWith(b.get(POOL), UnauthorizedError, /unauthorized: the Kubernetes API server .* did not accept the credentials \(get ippools\.crd\.projectcalico\.org\)/);
    } finally {
      await b.close();
    }
  });

  it('invalid kubeconfigs: a clear error naming the file and the problem', async () => {
    const f = (name: string, text: string) => {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    };
    const cases: [string, RegExp][] = [
      [join(dir, 'absent.kubeconfig'), /kubeconfig .*absent\.kubeconfig: cannot read it: ENOENT/],
      [f('garbage.kubeconfig', 'clusters: [unclosed'), /kubeconfig .*garbage\.kubeconfig: invalid: /],
      [f('nocontext.kubeconfig', JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'c', cluster: { server: api.url } }], users: [], contexts: [] })), /nocontext\.kubeconfig: no current-context set/],
      [f('nocluster.kubeconfig', JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [], users: [{ name: 'u', user: {} }], contexts: [{ name: 'x', context: { cluster: 'gone', user: 'u' } }], 'current-context': 'x' })), /nocluster\.kubeconfig: context "x" names no cluster that exists in the file/],
      [f('badctx.kubeconfig', JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [], users: [], contexts: [], 'current-context': 'nope' })), /badctx\.kubeconfig: current-context "nope" is not among its contexts/],
      [f('badserver.kubeconfig', JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'c', cluster: { server: 'not a url' } }], users: [{ name: 'u', user: {} }], contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'current-context': 'x' })), /badserver\.kubeconfig: cluster "c" server "not a url" is not a URL/],
    ];
    for (const [file, re] of cases) await rejectsWith(openKubernetes({ kubeconfig: file }), KubeConfigError, re);
  });

  it('in-cluster configuration: a real service-account token and KUBERNETES_SERVICE_HOST/PORT', async () => {
    await api.kubectl(['create', 'serviceaccount', 'calico-node', '-n', 'kube-system']);
    await api.kubectl(['create', 'clusterrolebinding', 'tortie-sa', '--clusterrole=cluster-admin', '--serviceaccount=kube-system:calico-node']);
    const token = (await api.kubectl(['create', 'token', 'calico-node', '-n', 'kube-system'])).stdout.trim();
    const sa = join(dir, 'serviceaccount');
    mkdirSync(sa);
    writeFileSync(join(sa, 'token'), token);
    copyFileSync(api.pki.caFile, join(sa, 'ca.crt'));
    const b = await openKubernetes({ env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port) }, serviceAccountDir: sa });
    try {
      const c = await b.create(POOL, poolValue);
      assert.equal((await b.get(POOL))?.revision, c.revision);
      await b.delete(POOL);
    } finally {
      await b.close();
    }
    await rejectsWith(openKubernetes({ env: {} }), KubeConfigError, /no Kubernetes connection configured: set KUBECONFIG .*KUBERNETES_SERVICE_HOST\/PORT are unset/);
    await rejectsWith(openKubernetes({ env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: '1' }, serviceAccountDir: join(dir, 'nosa') }), KubeConfigError, /cannot read the service-account token .*nosa\/token/);
  });

  describe('with the CRDs', () => {
    let b: KubernetesBackend;
    before(async () => {
      b = await openKubernetes({ kubeconfig: api.kubeconfig });
    });
    after(async () => {
      await b?.close();
    });

    it('a watch from an expired revision throws CompactedError (410 Gone from the API server)', async () => {
      const first = await b.apply(resourceKey('GlobalNetworkSet', 'gone'), JSON.stringify({ kind: 'GlobalNetworkSet', metadata: { name: 'gone' }, spec: { nets: ['10.0.0.0/8'] } }));
      for (let i = 0; i < 3; i++) await b.apply(resourceKey('GlobalNetworkSet', 'gone'), JSON.stringify({ kind: 'GlobalNetworkSet', metadata: { name: 'gone' }, spec: { nets: [`10.${i}.0.0/16`] } }));
      const now = await b.revision();
      execFileSync(api.binaries.etcdctl, ['--endpoints', api.etcdEndpoint, 'compact', now], { stdio: 'pipe' });
      // The API server's watch cache still serves history etcd has compacted, back to when the cache
      // started; a revision older than both is gone: 410, "too old resource version".
      assert.ok(BigInt(first.revision) > 2n);
      const it = b.watch('/calico/resources/v3/projectcalico.org/globalnetworksets/', { afterRevision: '2' })[Symbol.asyncIterator]();
      await rejectsWith(it.next(), CompactedError, /too old|compacted|re-list/i);
      // Across several kinds too (the agent's '/calico/ipam/' style prefixes).
      const it2 = b.watch('/calico/ipam/v2/', { afterRevision: '2' })[Symbol.asyncIterator]();
      await rejectsWith(it2.next(), CompactedError, /re-list/);
    });

    it('bad input changes nothing and is named: invalid revision, wrong kind, missing namespace, invalid object', async () => {
      await b.create(POOL, poolValue);
      const before = await b.get(POOL);
      await rejectsWith(b.update(POOL, poolValue, 'abc'), DatastoreError, /invalid revision "abc": must be a positive integer/);
      await rejectsWith(b.update(POOL, JSON.stringify({ kind: 'Tier', metadata: { name: 'p1' } }), before!.revision), DatastoreError, /holds kind "Tier", expected IPPool/);
      await rejectsWith(b.create(resourceKey('NetworkSet', 'n', 'no-such-ns'), JSON.stringify({ kind: 'NetworkSet', metadata: { name: 'n', namespace: 'no-such-ns' }, spec: {} })), DatastoreError, /namespace "no-such-ns" does not exist/);
      await rejectsWith(b.update(POOL, JSON.stringify({ kind: 'IPPool', metadata: { name: 'p1' }, spec: { cidr: 5 } }), before!.revision), DatastoreError, /refused update ippools\.crd\.projectcalico\.org \(422 Invalid\): .*spec\.cidr/);
      await rejectsWith(b.get('/calico/ipam/v2/config'), DatastoreError, /"\/calico\/ipam\/v2\/config" is not stored in the Kubernetes datastore/);
      assert.deepEqual(await b.get(POOL), before);
    });
  });
});
