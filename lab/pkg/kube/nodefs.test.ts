import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerdConfig, kubeletConfig, kubeProxyConfig } from './configs.js';
import { BOUND, HOLDER_SCRIPT, KUBELET_SYSCTLS, OVERLAID, cgroupRootName, holderArgv } from './nodefs.js';
import { clientIdentities, makeClusterPKI } from './pki.js';

describe('a lab node\'s mount namespace', () => {
  it('overlays the labs root\'s own overlay last and binds the labs root back only when it lies under one', () => {
    const tail = (labs: string) => holderArgv('/x/nodes/n1', labs).slice(-(OVERLAID.length + 2));
    assert.deepEqual(tail('/var/lib/tortie-lab'), ['/var/lib/tortie-lab', '1', '/etc', '/opt', '/var/log', '/run', '/usr/lib', '/var/lib']);
    assert.deepEqual(tail('/tmp/labs'), ['/tmp/labs', '0', ...OVERLAID]);
    assert.throws(() => holderArgv('/x', '/var'), /TORTIE_LAB_DIR \/var holds \/var\/lib/);
    assert.throws(() => holderArgv('/x', '/'), /TORTIE_LAB_DIR \/ holds/);
  });

  it('binds every standard path of a node and shadows each sysctl the kubelet sets', () => {
    for (const p of ['/etc/cni/net.d', '/opt/cni/bin', '/var/lib/kubelet', '/var/log/pods', '/var/lib/containerd', '/run/containerd', '/var/lib/cni', '/etc/kubernetes', '/run/calico', '/var/lib/calico']) {
      assert.ok(BOUND.includes(p), p);
      assert.ok(OVERLAID.some((o) => p.startsWith(`${o}/`)), `${p} lies under an overlay (its mount point is made there, not on the host)`);
    }
    assert.deepEqual(KUBELET_SYSCTLS, { 'vm/overcommit_memory': '1', 'vm/panic_on_oom': '0', 'kernel/panic': '10', 'kernel/panic_on_oops': '1', 'kernel/keys/root_maxkeys': '1000000', 'kernel/keys/root_maxbytes': '25000000' });
    assert.match(HOLDER_SCRIPT, /mount --bind "\$node\/sysctl\/\$k" "\/proc\/sys\/\$k"/);
    execFileSync('/bin/bash', ['-n', '-c', HOLDER_SCRIPT]);
  });

  it('cgroup roots are unique per lab and node', () => {
    assert.equal(cgroupRootName('tl-a-', 'node1'), '/tl-a-node1');
    assert.notEqual(cgroupRootName('tl-a-', 'node1'), cgroupRootName('tl-ab-', 'node1'));
  });
});

describe('configuration files', () => {
  it('containerd 1.6: version 2, the standard paths, pause 3.10.1, netns under the state dir, cgroupfs, oom_score_adj clamped', () => {
    const c = containerdConfig();
    for (const line of ['version = 2', 'root = "/var/lib/containerd"', 'state = "/run/containerd"', 'address = "/run/containerd/containerd.sock"',
      'sandbox_image = "registry.k8s.io/pause:3.10.1"', 'netns_mounts_under_state_dir = true', 'SystemdCgroup = false', 'restrict_oom_score_adj = true',
      'bin_dir = "/opt/cni/bin"', 'conf_dir = "/etc/cni/net.d"']) assert.ok(c.split('\n').some((l) => l.trim() === line), line);
  });

  it('kubelet and kube-proxy', () => {
    const k = kubeletConfig({ cgroupRoot: '/tl-a-node1', clusterDNS: ['10.233.0.3'] }) as Record<string, any>;
    assert.equal(k.cgroupRoot, '/tl-a-node1');
    assert.equal(k.cgroupDriver, 'cgroupfs');
    assert.equal(k.failSwapOn, false);
    assert.equal(k.authorization.mode, 'Webhook');
    assert.equal(k.imageGCHighThresholdPercent, 100);
    const p = kubeProxyConfig('node1') as Record<string, any>;
    assert.deepEqual([p.mode, p.clusterCIDR, p.conntrack.maxPerCore, p.hostnameOverride], ['nftables', '10.233.64.0/18', 0, 'node1']);
  });
});

describe('the cluster PKI', () => {
  it('one certificate per identity with the subject Kubernetes authorizes (openssl reads them back)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tortie-lab-pki-'));
    try {
      const pki = await makeClusterPKI(dir, { nodes: ['node1'], sanIPs: ['10.0.0.11', '10.233.0.1'], sanDNS: ['kubernetes'] });
      const subj = (f: string) => execFileSync('openssl', ['x509', '-in', f, '-noout', '-subject', '-nameopt', 'RFC2253'], { encoding: 'utf8' }).trim();
      assert.equal(subj(pki.client('kubelet-node1').cert), 'subject=CN=system:node:node1,O=system:nodes');
      assert.equal(subj(pki.client('admin').cert), 'subject=CN=kubernetes-admin,O=system:masters');
      assert.equal(subj(pki.client('apiserver-kubelet-client').cert), 'subject=CN=kube-apiserver');
      const san = execFileSync('openssl', ['x509', '-in', pki.apiserver, '-noout', '-ext', 'subjectAltName'], { encoding: 'utf8' });
      assert.match(san, /IP Address:10\.0\.0\.11, IP Address:10\.233\.0\.1, DNS:kubernetes/);
      for (const id of clientIdentities(['node1'])) execFileSync('openssl', ['verify', '-CAfile', pki.ca, pki.client(id.name).cert]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const never = join(tmpdir(), `tortie-lab-pki-never-${process.pid}`);
    await assert.rejects(makeClusterPKI(never, { nodes: ['a/CN=x'], sanIPs: [], sanDNS: [] }), /reserved character "a\/CN=x"|reserved character/);
    assert.equal(existsSync(never), false, 'nothing made');
  });
});
