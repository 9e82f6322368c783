import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostVethName, vethPrefixFrom } from '../../../../../cni-plugin/pkg/naming/index.js';
import type { K8sPod } from './k8s-objects.js';
import {
  ANN_CONTAINER_ID,
  ANN_POD_IP,
  ANN_POD_IPS,
  isValidCalicoWorkloadEndpoint,
  parseWorkloadEndpointName,
  podIPNetworks,
  podWorkloadEndpointName,
  wepDeletePatch,
  wepFromPod,
  wepWritePatch,
} from './workloadendpoint.js';

const CID = 'a'.repeat(64);

function pod(over: Partial<K8sPod> = {}): K8sPod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'nginx-abc',
      namespace: 'web-apps',
      uid: 'pod-uid',
      resourceVersion: '4711',
      creationTimestamp: '2026-01-02T03:04:05Z',
      labels: { app: 'nginx' },
      annotations: { [ANN_CONTAINER_ID]: CID, [ANN_POD_IP]: '10.233.64.9/32', [ANN_POD_IPS]: '10.233.64.9/32' },
    },
    spec: {
      nodeName: 'kind-worker',
      serviceAccountName: 'web-sa',
      containers: [
        {
          name: 'nginx',
          ports: [
            { name: 'http', containerPort: 80, protocol: 'TCP' },
            { containerPort: 8080 }, // no name, no hostPort: not an endpoint port
            { name: 'dns', containerPort: 53, protocol: 'UDP', hostPort: 5353, hostIP: '192.168.64.6' },
          ],
        },
        { name: 'side', ports: [{ containerPort: 9000, hostPort: 9000 }] },
      ],
    },
    status: { phase: 'Running', podIP: '10.233.64.9', podIPs: [{ ip: '10.233.64.9' }, { ip: 'fd00:10::9' }] },
    ...over,
  };
}

test('a scheduled pod reads as the WorkloadEndpoint Calico derives', () => {
  assert.deepEqual(wepFromPod(pod()), {
    apiVersion: 'projectcalico.org/v3',
    kind: 'WorkloadEndpoint',
    metadata: {
      name: 'kind--worker-k8s-nginx--abc-eth0',
      namespace: 'web-apps',
      uid: 'pod-uid',
      creationTimestamp: '2026-01-02T03:04:05Z',
      resourceVersion: '4711',
      labels: {
        app: 'nginx',
        'projectcalico.org/namespace': 'web-apps',
        'projectcalico.org/orchestrator': 'k8s',
        'projectcalico.org/serviceaccount': 'web-sa',
      },
    },
    spec: {
      orchestrator: 'k8s',
      node: 'kind-worker',
      pod: 'nginx-abc',
      endpoint: 'eth0',
      containerID: CID,
      serviceAccountName: 'web-sa',
      ipNetworks: ['10.233.64.9/32', 'fd00:10::9/128'],
      profiles: ['kns.web-apps', 'ksa.web-apps.web-sa'],
      interfaceName: hostVethName({ namespace: 'web-apps', pod: 'nginx-abc' }, ''),
      ports: [
        { name: 'http', protocol: 'TCP', port: 80 },
        { name: 'dns', protocol: 'UDP', port: 53, hostPort: 5353, hostIP: '192.168.64.6' },
        { protocol: 'TCP', port: 9000, hostPort: 9000 },
      ],
    },
  });
});

test('interfaceName is the CNI path\'s name: Calico\'s vector, and FELIX_INTERFACEPREFIX honoured', () => {
  const p = pod({ metadata: { name: 'podname', namespace: 'namespace' } });
  assert.equal(wepFromPod(p, { interfacePrefix: 'eni' })!.spec!.interfaceName, 'eni82111e10a96');
  assert.equal(wepFromPod(p)!.spec!.interfaceName, 'cali82111e10a96');
  const prefix = vethPrefixFrom('tap,cali');
  assert.equal(wepFromPod(p, { interfacePrefix: prefix })!.spec!.interfaceName, hostVethName({ namespace: 'namespace', pod: 'podname' }, 'x', prefix));
});

test('hostNetwork and unscheduled pods are not endpoints; a pod without addresses is one', () => {
  const hostNet = pod();
  hostNet.spec!.hostNetwork = true;
  assert.equal(isValidCalicoWorkloadEndpoint(hostNet), false);
  assert.equal(wepFromPod(hostNet), null);
  const pending = pod();
  delete pending.spec!.nodeName;
  assert.equal(wepFromPod(pending), null);
  const noIP = pod({ status: { phase: 'Pending' } });
  noIP.metadata!.annotations = {};
  const w = wepFromPod(noIP)!;
  assert.equal(w.spec!.ipNetworks, undefined);
  assert.equal(w.spec!.containerID, undefined);
});

test('addresses: status.podIPs, then status.podIP, then the CNI annotations; none when finished', () => {
  const p = pod();
  assert.deepEqual(podIPNetworks(p), ['10.233.64.9/32', 'fd00:10::9/128']);
  p.status = { phase: 'Running', podIP: '10.233.64.10' };
  assert.deepEqual(podIPNetworks(p), ['10.233.64.10/32']);
  p.status = { phase: 'Pending' };
  p.metadata!.annotations = { [ANN_POD_IPS]: '10.233.64.11/32,fd00:10:0:0::b/128', [ANN_POD_IP]: '10.233.64.12/32' };
  assert.deepEqual(podIPNetworks(p), ['10.233.64.11/32', 'fd00:10::b/128']);
  p.metadata!.annotations = { [ANN_POD_IPS]: '', [ANN_POD_IP]: '10.233.64.12/32' };
  assert.deepEqual(podIPNetworks(p), ['10.233.64.12/32']);
  p.metadata!.annotations = { [ANN_POD_IPS]: '', [ANN_POD_IP]: '' };
  assert.deepEqual(podIPNetworks(p), []);
  p.metadata!.annotations = { [ANN_POD_IPS]: 'garbage,10.233.64.13' };
  assert.deepEqual(podIPNetworks(p), ['10.233.64.13/32'], 'an unparsable entry is skipped');
  for (const phase of ['Succeeded', 'Failed', 'Completed']) {
    assert.deepEqual(podIPNetworks(pod({ status: { phase, podIP: '10.233.64.9' } })), [], phase);
  }
  // Being deleted: the addresses go when the CNI's DEL has emptied the podIP annotation, not before.
  const deleting = pod();
  deleting.metadata!.deletionTimestamp = '2026-01-02T03:05:00Z';
  assert.deepEqual(podIPNetworks(deleting), ['10.233.64.9/32', 'fd00:10::9/128']);
  deleting.metadata!.annotations = { ...deleting.metadata!.annotations, [ANN_POD_IP]: '', [ANN_POD_IPS]: '' };
  assert.deepEqual(podIPNetworks(deleting), []);
  assert.equal(wepFromPod(deleting)!.spec!.ipNetworks, undefined);
});

test('no service account: one profile, no serviceaccount label; a 63-character one gets no label', () => {
  const p = pod();
  delete p.spec!.serviceAccountName;
  const w = wepFromPod(p)!;
  assert.deepEqual(w.spec!.profiles, ['kns.web-apps']);
  assert.equal(w.spec!.serviceAccountName, undefined);
  assert.equal(w.metadata.labels!['projectcalico.org/serviceaccount'], undefined);
  const long = pod();
  long.spec!.serviceAccountName = 's'.repeat(63);
  const l = wepFromPod(long)!;
  assert.equal(l.metadata.labels!['projectcalico.org/serviceaccount'], undefined);
  assert.deepEqual(l.spec!.profiles, ['kns.web-apps', `ksa.web-apps.${'s'.repeat(63)}`]);
});

test('a pod of a ReplicaSet keeps its generateName, as Calico copies it', () => {
  const p = pod();
  p.metadata!.generateName = 'nginx-';
  assert.equal(wepFromPod(p)!.metadata.generateName, 'nginx-');
  assert.equal(wepFromPod(pod())!.metadata.generateName, undefined);
});

test('pod labels cannot override the labels Calico sets', () => {
  const p = pod();
  p.metadata!.labels = { 'projectcalico.org/namespace': 'forged', 'projectcalico.org/orchestrator': 'cni' };
  const l = wepFromPod(p)!.metadata.labels!;
  assert.equal(l['projectcalico.org/namespace'], 'web-apps');
  assert.equal(l['projectcalico.org/orchestrator'], 'k8s');
});

test('endpoint names: "-" doubled per segment and parsed back', () => {
  assert.equal(podWorkloadEndpointName('kind-worker', 'nginx-abc'), 'kind--worker-k8s-nginx--abc-eth0');
  assert.deepEqual(parseWorkloadEndpointName('kind--worker-k8s-nginx--abc-eth0'), { node: 'kind-worker', pod: 'nginx-abc', endpoint: 'eth0' });
  assert.deepEqual(parseWorkloadEndpointName('n1-k8s-a--b--c-eth0'), { node: 'n1', pod: 'a-b-c', endpoint: 'eth0' });
  for (const bad of ['n1-cni-abc-eth0', 'n1-k8s-pod', 'n1-k8s-pod-eth0-x', 'n1-k8s--pod-eth0', '-k8s-pod-eth0', 'n1-k8s-pod-']) {
    assert.equal(parseWorkloadEndpointName(bad), null, bad);
  }
  for (const [node, p] of [['a-b', 'c-d-e'], ['x', 'y'], ['node.example.com', 'web-0']] as const) {
    assert.deepEqual(parseWorkloadEndpointName(podWorkloadEndpointName(node, p)), { node, pod: p, endpoint: 'eth0' });
  }
});

test('CNI write patch: podIP first, podIPs joined, containerID; preconditions when given', () => {
  const w = wepFromPod(pod())!;
  assert.deepEqual(wepWritePatch(w, { uid: 'pod-uid', resourceVersion: '4711' }), {
    metadata: {
      annotations: {
        [ANN_POD_IP]: '10.233.64.9/32',
        [ANN_POD_IPS]: '10.233.64.9/32,fd00:10::9/128',
        [ANN_CONTAINER_ID]: CID,
      },
      uid: 'pod-uid',
      resourceVersion: '4711',
    },
  });
  assert.deepEqual(wepWritePatch({ ...w, spec: { containerID: 'c1' } }), {
    metadata: { annotations: { [ANN_POD_IP]: '', [ANN_POD_IPS]: '', [ANN_CONTAINER_ID]: 'c1' } },
  });
  assert.deepEqual(wepDeletePatch({ uid: 'u' }), { metadata: { annotations: { [ANN_POD_IP]: '', [ANN_POD_IPS]: '' }, uid: 'u' } });
});
