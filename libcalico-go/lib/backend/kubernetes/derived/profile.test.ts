import assert from 'node:assert/strict';
import { test } from 'node:test';
import { convertUID } from '../mapping.js';
import {
  DEFAULT_ALLOW_PROFILE,
  defaultAllowProfile,
  joinProfileRevisions,
  profileFromNamespace,
  profileFromServiceAccount,
  profileSource,
  splitProfileRevision,
} from './profile.js';

test('a Namespace reads as kns.<ns>: allow all, pcns. labels and its name, revision "<nsRV>/"', () => {
  const p = profileFromNamespace({
    metadata: { name: 'web-apps', uid: '6b1e3f00-1c2d-4e5f-8a9b-0c1d2e3f4a5b', resourceVersion: '120', creationTimestamp: '2026-01-02T03:04:05Z', labels: { team: 'a', 'kubernetes.io/metadata.name': 'web-apps' } },
  });
  assert.deepEqual(p, {
    apiVersion: 'projectcalico.org/v3',
    kind: 'Profile',
    metadata: { name: 'kns.web-apps', uid: convertUID('6b1e3f00-1c2d-4e5f-8a9b-0c1d2e3f4a5b'), creationTimestamp: '2026-01-02T03:04:05Z', resourceVersion: '120/' },
    spec: {
      ingress: [{ action: 'Allow' }],
      egress: [{ action: 'Allow' }],
      labelsToApply: { 'pcns.team': 'a', 'pcns.kubernetes.io/metadata.name': 'web-apps', 'pcns.projectcalico.org/name': 'web-apps' },
    },
  });
});

test('a ServiceAccount reads as ksa.<ns>.<sa>: pcsa. labels and its name, no rules, revision "/<saRV>"', () => {
  const p = profileFromServiceAccount({ metadata: { name: 'web-sa', namespace: 'web-apps', resourceVersion: '133', labels: { role: 'fe' } } });
  assert.deepEqual(p, {
    apiVersion: 'projectcalico.org/v3',
    kind: 'Profile',
    metadata: { name: 'ksa.web-apps.web-sa', resourceVersion: '/133' },
    spec: { labelsToApply: { 'pcsa.role': 'fe', 'pcsa.projectcalico.org/name': 'web-sa' } },
  });
});

test('the uid is the Kubernetes one converted as Calico does (bit-reversed, version and variant kept); a non-UUID is left out', () => {
  const p = profileFromServiceAccount({ metadata: { name: 'a', namespace: 'b', uid: '00000000-0000-4000-8000-000000000001' } });
  assert.equal(p.metadata.uid, '00000000-0000-4000-8000-000000000080');
  assert.equal(profileFromServiceAccount({ metadata: { name: 'a', namespace: 'b', uid: 'not-a-uuid' } }).metadata.uid, undefined);
});

test('projectcalico-default-allow is allow all with no revision', () => {
  assert.deepEqual(defaultAllowProfile(), {
    apiVersion: 'projectcalico.org/v3',
    kind: 'Profile',
    metadata: { name: DEFAULT_ALLOW_PROFILE },
    spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] },
  });
});

test('combined revisions: join and split, "" and "0" are none, anything else needs exactly one "/"', () => {
  assert.equal(joinProfileRevisions('12', '34'), '12/34');
  assert.equal(joinProfileRevisions('12', ''), '12/');
  assert.equal(joinProfileRevisions('', '34'), '/34');
  assert.deepEqual(splitProfileRevision('12/34'), { nsRev: '12', saRev: '34' });
  assert.deepEqual(splitProfileRevision('12/'), { nsRev: '12', saRev: '' });
  assert.deepEqual(splitProfileRevision('/34'), { nsRev: '', saRev: '34' });
  assert.deepEqual(splitProfileRevision(''), { nsRev: '', saRev: '' });
  assert.deepEqual(splitProfileRevision('0'), { nsRev: '', saRev: '' });
  for (const bad of ['12', '1/2/3', '//']) {
    assert.throws(() => splitProfileRevision(bad), { name: 'InvalidDerivedValueError', message: /invalid profile revision/ }, bad);
  }
  for (const [a, b] of [['1', '2'], ['', '9'], ['7', '']]) assert.deepEqual(splitProfileRevision(joinProfileRevisions(a!, b!)), { nsRev: a, saRev: b });
});

test('profile names map back to their Kubernetes source', () => {
  assert.deepEqual(profileSource('kns.web-apps'), { kind: 'namespace', namespace: 'web-apps' });
  assert.deepEqual(profileSource('ksa.web-apps.web-sa'), { kind: 'serviceaccount', namespace: 'web-apps', serviceAccount: 'web-sa' });
  assert.deepEqual(profileSource('ksa.ns.sa.with.dots'), { kind: 'serviceaccount', namespace: 'ns', serviceAccount: 'sa.with.dots' });
  assert.deepEqual(profileSource(DEFAULT_ALLOW_PROFILE), { kind: 'default-allow' });
  for (const other of ['k8s-pod-network', 'kns.', 'kns.a.b', 'ksa.ns', 'ksa..sa', 'ksa.ns.']) assert.equal(profileSource(other), null, other);
});
