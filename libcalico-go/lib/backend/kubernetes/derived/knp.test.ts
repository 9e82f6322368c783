import assert from 'node:assert/strict';
import { test } from 'node:test';
import { convertK8sNetworkPolicy } from '../../../policy/k8s.js';
import { convertUID } from '../mapping.js';
import { knpFromK8s, knpK8sName } from './knp.js';

const np = {
  metadata: { name: 'allow-kube-system', namespace: 'web', uid: '6b1e3f00-1c2d-4e5f-8a9b-0c1d2e3f4a5b', resourceVersion: '991', creationTimestamp: '2026-01-02T03:04:05Z', generation: 1 },
  spec: {
    podSelector: { matchLabels: { app: 'nginx' } },
    ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } }], ports: [{ port: 80, protocol: 'TCP' }] }],
    policyTypes: ['Ingress'],
  },
};

test('a k8s NetworkPolicy from the API reads as knp.default.<name> in its namespace with its revision', () => {
  const p = knpFromK8s(np);
  const expected = convertK8sNetworkPolicy({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', ...np });
  assert.equal(p.metadata.name, 'knp.default.allow-kube-system');
  assert.equal(p.metadata.namespace, 'web');
  assert.equal(p.metadata.resourceVersion, '991');
  assert.equal(p.metadata.uid, convertUID('6b1e3f00-1c2d-4e5f-8a9b-0c1d2e3f4a5b'));
  assert.notEqual(p.metadata.uid, '6b1e3f00-1c2d-4e5f-8a9b-0c1d2e3f4a5b');
  assert.equal(p.metadata.creationTimestamp, '2026-01-02T03:04:05Z');
  assert.deepEqual(p.spec, expected.spec, 'the translation is tortiectl apply\'s');
  assert.equal(p.kind, 'NetworkPolicy');
});

test('knp names map back to the k8s name', () => {
  assert.equal(knpK8sName('knp.default.allow-kube-system'), 'allow-kube-system');
  assert.equal(knpK8sName('default.allow'), null);
  assert.equal(knpK8sName('knp.default.'), null);
});
