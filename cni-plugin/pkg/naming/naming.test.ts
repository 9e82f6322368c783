import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CniError } from '../skel/errors.js';
import {
  hostVethName,
  orchestratorOf,
  podIdentityFromArgs,
  vethPrefixFrom,
  workloadEndpointIds,
  workloadEndpointName,
  workloadEndpointNameFor,
  workloadEndpointNameMatches,
  workloadEndpointNamePrefix,
} from './index.js';

describe('hostVethName', () => {
  it("Calico's test vector: namespace/podname with prefix eni", () => {
    assert.equal(hostVethName({ namespace: 'namespace', pod: 'podname' }, 'ignored', 'eni'), 'eni82111e10a96');
  });

  it('k8s pods: cali + sha1("<ns>.<pod>")[:11], independent of the container ID', () => {
    // sha1("kube-system.coredns-5d78c9869d-abcde") = 4d5f75c480cc7f4e... (sha1sum)
    const pod = { namespace: 'kube-system', pod: 'coredns-5d78c9869d-abcde' };
    assert.equal(hostVethName(pod, 'c1'), 'cali4d5f75c480c');
    assert.equal(hostVethName(pod, 'c2'), 'cali4d5f75c480c');
    assert.equal(hostVethName(pod, 'c1').length, 15);
  });

  it('without both namespace and pod: prefix + containerId[:11]', () => {
    const cid = '0123456789abcdef0123';
    assert.equal(hostVethName({}, cid), 'cali0123456789a');
    assert.equal(hostVethName({ namespace: 'ns' }, cid), 'cali0123456789a');
    assert.equal(hostVethName({ pod: 'p' }, cid), 'cali0123456789a');
    assert.equal(hostVethName({ namespace: '', pod: 'p' }, cid), 'cali0123456789a');
    assert.equal(hostVethName({}, cid, 'tap'), 'tap0123456789a');
  });

  it('hashes container IDs that are not random hex, so ctr-style IDs do not collide', () => {
    const a = hostVethName({}, 'trt-8dbd75-c1');
    const b = hostVethName({}, 'trt-8dbd75-c2');
    assert.notEqual(a, b);
    assert.match(a, /^cali[0-9a-f]{11}$/);
    assert.equal(a, hostVethName({}, 'trt-8dbd75-c1'), 'stable');
  });

  it('short or non-hex container IDs are hashed to a full-length name', () => {
    assert.match(hostVethName({}, 'abc'), /^cali[0-9a-f]{11}$/);
  });

  it('refuses an empty container ID without pod identity, and a prefix that makes the name too long', () => {
    assert.throws(() => hostVethName({}, ''), RangeError);
    assert.throws(() => hostVethName({ namespace: 'a', pod: 'b' }, 'x', 'toolong'), /at most 15/);
    assert.equal(hostVethName({ namespace: 'a', pod: 'b' }, 'x', 'abcd').length, 15);
  });

  it('prefix from FELIX_INTERFACEPREFIX: first entry, default cali', () => {
    assert.equal(vethPrefixFrom(undefined), 'cali');
    assert.equal(vethPrefixFrom(''), 'cali');
    assert.equal(vethPrefixFrom('eni,cali'), 'eni');
    assert.equal(vethPrefixFrom(' tap , cali'), 'tap');
    assert.equal(vethPrefixFrom(',cali'), 'cali');
  });
});

describe('pod identity', () => {
  it('reads CNI_ARGS from a Map or an object', () => {
    const m = new Map([
      ['K8S_POD_NAMESPACE', 'ns'],
      ['K8S_POD_NAME', 'p'],
      ['IgnoreUnknown', '1'],
    ]);
    assert.deepEqual(podIdentityFromArgs(m), { namespace: 'ns', pod: 'p' });
    assert.deepEqual(podIdentityFromArgs({ K8S_POD_NAME: 'p', K8S_POD_NAMESPACE: '' }), { pod: 'p' });
    assert.equal(orchestratorOf({ namespace: 'ns', pod: 'p' }), 'k8s');
    assert.equal(orchestratorOf({ pod: 'p' }), 'cni');
  });
});

describe('WorkloadEndpoint names', () => {
  it('re-exports the v3 model function (one implementation)', () => {
    assert.deepEqual(workloadEndpointName({ node: 'kind-worker', orchestrator: 'k8s', pod: 'nginx-abc', endpoint: 'eth0' }), {
      name: 'kind--worker-k8s-nginx--abc-eth0',
    });
  });

  it('k8s and cni workloads from an invocation', () => {
    assert.equal(
      workloadEndpointNameFor({ node: 'kind-worker', pod: { namespace: 'default', pod: 'nginx-abc' }, containerId: 'c1', ifname: 'eth0' }),
      'kind--worker-k8s-nginx--abc-eth0',
    );
    assert.equal(workloadEndpointNameFor({ node: 'node1', pod: {}, containerId: 'abc-123', ifname: 'eth0' }), 'node1-cni-abc--123-eth0');
    assert.deepEqual(workloadEndpointIds({ node: 'n', pod: {}, containerId: 'c', ifname: 'eth1' }), {
      node: 'n',
      orchestrator: 'cni',
      containerID: 'c',
      endpoint: 'eth1',
    });
  });

  it('errors name the input: node → code 7, environment → code 4', () => {
    assert.throws(
      () => workloadEndpointNameFor({ node: '', pod: {}, containerId: 'c', ifname: 'eth0' }),
      (e: unknown) => e instanceof CniError && e.code === 7 && /node name ""/.test(e.message),
    );
    assert.throws(
      () => workloadEndpointNameFor({ node: 'n', pod: {}, containerId: 'c', ifname: '-eth0' }),
      (e: unknown) => e instanceof CniError && e.code === 4 && /CNI_IFNAME "-eth0" must not begin with "-"/.test(e.message),
    );
  });

  it('prefix and match: pod "web" does not claim the endpoints of pod "web-1"', () => {
    const w = { node: 'n1', pod: { namespace: 'ns', pod: 'web' }, containerId: 'c' };
    assert.equal(workloadEndpointNamePrefix(w), 'n1-k8s-web-');
    assert.equal(workloadEndpointNameMatches('n1-k8s-web-eth0', w), true);
    assert.equal(workloadEndpointNameMatches('n1-k8s-web-net--1', w), true);
    assert.equal(workloadEndpointNameMatches('n1-k8s-web--1-eth0', w), false);
    assert.equal(workloadEndpointNameMatches('n1-k8s-web-', w), false);
    assert.equal(workloadEndpointNameMatches('n2-k8s-web-eth0', w), false);
  });
});
