import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkK8sRevision, encodeValue, EventQueue, namespaceOfPrefix } from './source.js';

const W = '/calico/resources/v3/projectcalico.org/workloadendpoints/';

test('a key prefix limits the Kubernetes query to a namespace only when it names a whole one', () => {
  assert.equal(namespaceOfPrefix(`${W}web/`, W), 'web');
  assert.equal(namespaceOfPrefix(`${W}web/kind--worker-k8s-`, W), 'web');
  assert.equal(namespaceOfPrefix(`${W}we`, W), undefined);
  assert.equal(namespaceOfPrefix(W, W), undefined);
  assert.equal(namespaceOfPrefix('/calico/resources/v3/projectcalico.org/', W), undefined);
  assert.equal(namespaceOfPrefix('/calico/resources/v3/projectcalico.org/nodes/', W), undefined);
});

test('stored values leave the revision out of metadata and keep everything else', () => {
  const v = encodeValue({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'n', resourceVersion: '7', uid: 'u' }, spec: { a: 1 } });
  assert.deepEqual(JSON.parse(v), { apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'n', uid: 'u' }, spec: { a: 1 } });
});

test('revisions sent to Kubernetes must be positive integers', () => {
  checkK8sRevision('1', 'x');
  checkK8sRevision('123456789012345678901', 'x');
  for (const bad of ['', '0', '01', '1/2', '-1', 'abc']) assert.throws(() => checkK8sRevision(bad, 'list of pods'), /list of pods: invalid revision/, bad);
});

test('the event queue delivers in order, then its end or its failure', async () => {
  const q = new EventQueue<number>();
  q.push(1);
  q.push(2);
  setImmediate(() => {
    q.push(3);
    q.end();
  });
  const got: number[] = [];
  for await (const x of q.drain()) got.push(x);
  assert.deepEqual(got, [1, 2, 3]);
  const f = new EventQueue<number>();
  f.push(1);
  f.fail(new Error('boom'));
  const seen: number[] = [];
  await assert.rejects(async () => {
    for await (const x of f.drain()) seen.push(x);
  }, /boom/);
  assert.deepEqual(seen, [1], 'queued items come before the failure');
});
