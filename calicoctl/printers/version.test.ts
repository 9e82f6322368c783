import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderVersion } from './version.js';

test('seed: calicoctl version', () => {
  assert.equal(
    renderVersion({
      clientVersion: 'v3.20.3',
      gitCommit: 'dcb4b76a',
      cluster: { calicoVersion: 'v3.20.3', clusterType: 'kubespray,bgp,kubeadm,kdd,k8s' },
    }),
    'Client Version:    v3.20.3\n' +
      'Git commit:        dcb4b76a\n' +
      'Cluster Version:   v3.20.3\n' +
      'Cluster Type:      kubespray,bgp,kubeadm,kdd,k8s\n',
  );
});

test('values start at column 20; --client; unknown; no config', () => {
  const out = renderVersion({ clientVersion: 'v1', gitCommit: 'abc', cluster: {} });
  for (const l of out.trimEnd().split('\n')) assert.equal(l.indexOf(' ', 16) >= 0 && l[19] !== ' ', true, l);
  assert.equal(out, 'Client Version:    v1\nGit commit:        abc\nCluster Version:   unknown\nCluster Type:      unknown\n');
  assert.equal(
    renderVersion({ clientVersion: 'v1', gitCommit: 'abc', clientOnly: true, cluster: { calicoVersion: 'x' } }),
    'Client Version:    v1\nGit commit:        abc\n',
  );
  assert.equal(
    renderVersion({ clientVersion: 'v1', gitCommit: 'abc', cluster: null }),
    'Client Version:    v1\nGit commit:        abc\nUnable to detect installed Calico version\n',
  );
  assert.equal(renderVersion({ clientVersion: '', gitCommit: 'abc' }), 'Client Version:    \nGit commit:        abc\n');
});
