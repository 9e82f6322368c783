// The pure key <-> crd.projectcalico.org/v1 mapping: names, metadata forms, UIDs, IPAM objects.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DatastoreError } from '../api.js';
import { affinityKey, blockKey, handleKey, resourceKey } from '../keys.js';
import { parseCIDR } from '../../net/ip.js';
import {
  METADATA_ANNOTATION,
  affinityName,
  apiPath,
  cidrName,
  convertUID,
  foldIPPoolV1,
  fromObject,
  hostnameHash,
  isSoftDeleted,
  kindOfKey,
  refOfKey,
  softDeleted,
  toObject,
  type K8sObject,
} from './mapping.js';

const cidr = (s: string) => parseCIDR(s)!;

describe('UID conversion', () => {
  it('bit-reverses every byte but 6 and 8, and is its own inverse', () => {
    const uid = '01234567-89ab-cdef-0123-456789abcdef';
    const v3 = convertUID(uid);
    // 0x01 -> 0x80, 0x23 -> 0xc4, 0x45 -> 0xa2, 0x67 -> 0xe6; bytes 6 (0xcd) and 8 (0x01) kept, byte 9 (0x23) -> 0xc4.
    assert.equal(v3, '80c4a2e6-91d5-cdf7-01c4-a2e691d5b3f7');
    assert.equal(convertUID(v3), uid);
    // Version and variant nibbles survive.
    assert.equal(convertUID('ca41f24a-39d5-4eb3-b936-b0fba284cbab')[14], '4');
    assert.match(convertUID('ca41f24a-39d5-4eb3-b936-b0fba284cbab'), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-b[0-9a-f]{3}-[0-9a-f]{12}$/);
  });
  it('refuses what is not a UUID, naming it', () => {
    assert.throws(() => convertUID('nope'), (e: Error) => e instanceof DatastoreError && e.message.includes('"nope"'));
  });
});

describe('keys to objects', () => {
  it('resources keep their names; namespaced kinds their namespace', () => {
    const r = refOfKey(resourceKey('IPPool', 'default-pool'));
    assert.deepEqual([r.kind.crPlural, r.kind.crKind, r.namespace, r.name], ['ippools', 'IPPool', undefined, 'default-pool']);
    const ns = refOfKey(resourceKey('NetworkSet', 'ext', 'prod'));
    assert.deepEqual([ns.kind.crPlural, ns.namespace, ns.name], ['networksets', 'prod', 'ext']);
    assert.equal(apiPath(ns.kind, ns.namespace, ns.name), '/apis/crd.projectcalico.org/v1/namespaces/prod/networksets/ext');
    assert.equal(apiPath(r.kind), '/apis/crd.projectcalico.org/v1/ippools');
    const ipc = refOfKey(resourceKey('IPAMConfiguration', 'default'));
    assert.deepEqual([ipc.kind.crPlural, ipc.kind.crKind, ipc.name], ['ipamconfigs', 'IPAMConfig', 'default']);
  });
  it('policies get the default. tier prefix when their name has no tier', () => {
    assert.equal(refOfKey(resourceKey('NetworkPolicy', 'allow-dns', 'kube-system')).name, 'default.allow-dns');
    assert.equal(refOfKey(resourceKey('GlobalNetworkPolicy', 'deny')).name, 'default.deny');
    assert.equal(refOfKey(resourceKey('GlobalNetworkPolicy', 'security.deny')).name, 'security.deny');
    assert.equal(refOfKey(resourceKey('GlobalNetworkSet', 'x')).name, 'x');
  });
  it('IPAM objects get Calico names', () => {
    assert.equal(refOfKey(blockKey(cidr('10.233.64.0/24'))).name, '10-233-64-0-24');
    assert.equal(refOfKey(blockKey(cidr('fd00:1::/122'))).name, 'fd00-1---122');
    assert.equal(cidrName('10.0.0.0/26'), '10-0-0-0-26');
    assert.equal(refOfKey(affinityKey('playcekube-worker01', cidr('10.233.64.0/24'))).name, 'playcekube-worker01-10-233-64-0-24');
    assert.equal(refOfKey(handleKey('k8s-pod-network.ABC123')).name, 'k8s-pod-network.abc123');
    assert.equal(refOfKey(blockKey(cidr('10.0.0.0/26'))).kind.crPlural, 'ipamblocks');
  });
  it('very long affinity names stay within 253 characters and distinct', () => {
    const a = affinityName('h'.repeat(250) + 'a', '10.0.0.0/26');
    const b = affinityName('h'.repeat(250) + 'b', '10.0.0.0/26');
    assert.ok(a.length <= 253 && b.length <= 253);
    assert.notEqual(a, b);
    assert.ok(a.endsWith('-10-0-0-0-26'));
  });
  it('keys not stored as CRDs, or malformed, are refused naming the key', () => {
    for (const k of ['/calico/ipam/v2/config', '/other/x', '/calico/resources/v3/projectcalico.org/networksets/only-name', '/calico/ipam/v2/assignment/ipv4/x']) {
      assert.throws(() => refOfKey(k), (e: Error) => e instanceof DatastoreError && e.message.includes(JSON.stringify(k)), k);
    }
    assert.equal(kindOfKey('/calico/resources/v3/projectcalico.org/nodes/n1'), undefined);
  });
});

describe('resource metadata (v3.28+ form)', () => {
  const key = resourceKey('NetworkPolicy', 'web', 'prod');
  const value = {
    kind: 'NetworkPolicy',
    apiVersion: 'projectcalico.org/v3',
    metadata: {
      name: 'web',
      namespace: 'prod',
      uid: 'ignored-on-write',
      resourceVersion: '7',
      creationTimestamp: '2025-06-23T05:13:00Z',
      labels: { app: 'web', 'projectcalico.org/owner': 'x' },
      annotations: { note: 'n', 'operator.tigera.io/keep': 'y' },
    },
    spec: { tier: 'default', selector: 'app == "web"', types: ['Ingress'] },
  };
  const obj = toObject(key, refOfKey(key), JSON.stringify(value), '42');

  it('writes name, namespace and resourceVersion on the CR, the rest as JSON in the annotation', () => {
    assert.equal(obj.apiVersion, 'crd.projectcalico.org/v1');
    assert.equal(obj.kind, 'NetworkPolicy');
    assert.deepEqual([obj.metadata.name, obj.metadata.namespace, obj.metadata.resourceVersion], ['default.web', 'prod', '42']);
    assert.equal(obj.metadata.uid, undefined);
    assert.deepEqual(JSON.parse(obj.metadata.annotations![METADATA_ANNOTATION]), {
      creationTimestamp: '2025-06-23T05:13:00Z',
      labels: value.metadata.labels,
      annotations: value.metadata.annotations,
    });
    // Only projectcalico.org/ and operator.tigera.io/ keys stay on the CR itself.
    assert.deepEqual(obj.metadata.labels, { 'projectcalico.org/owner': 'x' });
    assert.deepEqual(Object.keys(obj.metadata.annotations!).sort(), ['operator.tigera.io/keep', METADATA_ANNOTATION]);
    assert.deepEqual(obj.spec, value.spec);
  });

  it('reads back the same v3 object, uid = the CR UID bit-reversed', () => {
    const stored: K8sObject = { ...obj, metadata: { ...obj.metadata, uid: 'ca41f24a-39d5-4eb3-b936-b0fba284cbab', creationTimestamp: '2026-01-01T00:00:00Z' } };
    const kv = fromObject(refOfKey(key).kind, stored)!;
    assert.equal(kv.key, key);
    const v = JSON.parse(kv.value);
    const { resourceVersion: _rv, uid: _uid, ...meta } = value.metadata;
    const labels = { ...meta.labels, 'projectcalico.org/tier': 'default' };
    assert.deepEqual(v, { ...value, metadata: { ...meta, labels, uid: convertUID('ca41f24a-39d5-4eb3-b936-b0fba284cbab') } });
  });

  it('the tier label: stored on the CR only for other tiers, always there on read, as Calico v3.29', () => {
    const k = resourceKey('GlobalNetworkPolicy', 'security.deny');
    const o = toObject(k, refOfKey(k), JSON.stringify({ kind: 'GlobalNetworkPolicy', metadata: { name: 'security.deny' }, spec: { tier: 'security' } }));
    assert.deepEqual(o.metadata.labels, { 'projectcalico.org/tier': 'security' });
    const v = JSON.parse(fromObject(refOfKey(k).kind, o)!.value);
    assert.deepEqual(v.metadata.labels, { 'projectcalico.org/tier': 'security' });
    assert.equal(fromObject(refOfKey(k).kind, o)!.key, k);
    // Default tier: Tortie's label is not stored (neither on the CR nor in the JSON) and comes back on read.
    const d = resourceKey('GlobalNetworkPolicy', 'deny');
    const od = toObject(d, refOfKey(d), JSON.stringify({ kind: 'GlobalNetworkPolicy', metadata: { name: 'deny', labels: { 'projectcalico.org/tier': 'default' } }, spec: { selector: 'all()' } }));
    assert.equal(od.metadata.labels, undefined);
    assert.deepEqual(JSON.parse(od.metadata.annotations![METADATA_ANNOTATION]), {});
    const vd = JSON.parse(fromObject(refOfKey(d).kind, od)!.value);
    assert.deepEqual(vd.metadata.labels, { 'projectcalico.org/tier': 'default' });
    assert.deepEqual(vd.spec, { selector: 'all()', tier: 'default' }, 'spec.tier filled from the name');
  });

  it('refuses a value of another kind or not JSON, naming the key', () => {
    const k = resourceKey('IPPool', 'p');
    assert.throws(() => toObject(k, refOfKey(k), JSON.stringify({ kind: 'Tier', metadata: { name: 'p' } })), /holds kind "Tier", expected IPPool/);
    assert.throws(() => toObject(k, refOfKey(k), 'not json'), (e: Error) => e.message.includes(k) && /not JSON/.test(e.message));
  });
});

describe('resource metadata (pre-3.28 form)', () => {
  it('takes labels and annotations from the CR and the uid from the JSON', () => {
    const k = resourceKey('IPPool', 'default-ipv4-ippool');
    const cr: K8sObject = {
      apiVersion: 'crd.projectcalico.org/v1',
      kind: 'IPPool',
      metadata: {
        name: 'default-ipv4-ippool',
        uid: 'ca41f24a-39d5-4eb3-b936-b0fba284cbab',
        resourceVersion: '900',
        creationTimestamp: '2021-03-01T00:00:00Z',
        labels: { zone: 'a' },
        annotations: { [METADATA_ANNOTATION]: '{"uid":"11111111-2222-4333-8444-555555555555","creationTimestamp":"2021-03-01T00:00:00Z"}', owner: 'ops' },
      },
      spec: { cidr: '192.168.0.0/16', ipipMode: 'Always', natOutgoing: true },
    };
    const v = JSON.parse(fromObject(refOfKey(k).kind, cr)!.value);
    assert.deepEqual(v.metadata, {
      name: 'default-ipv4-ippool',
      uid: '11111111-2222-4333-8444-555555555555',
      creationTimestamp: '2021-03-01T00:00:00Z',
      labels: { zone: 'a' },
      annotations: { owner: 'ops' },
    });
  });
  it('without the annotation: the CR creationTimestamp and reversed UID', () => {
    const k = resourceKey('IPPool', 'p');
    const cr: K8sObject = { apiVersion: 'crd.projectcalico.org/v1', kind: 'IPPool', metadata: { name: 'p', uid: '01234567-89ab-cdef-0123-456789abcdef', creationTimestamp: '2020-01-01T00:00:00Z' }, spec: {} };
    const v = JSON.parse(fromObject(refOfKey(k).kind, cr)!.value);
    assert.deepEqual(v.metadata, { name: 'p', uid: '80c4a2e6-91d5-cdf7-01c4-a2e691d5b3f7', creationTimestamp: '2020-01-01T00:00:00Z' });
  });
});

describe('IPPool v1 fields', () => {
  it('spec.ipip and spec.nat-outgoing fold into ipipMode and natOutgoing on read, as Calico does', () => {
    assert.deepEqual(foldIPPoolV1({ cidr: '10.0.0.0/16', ipip: { enabled: true, mode: 'cross-subnet' }, 'nat-outgoing': true }), { cidr: '10.0.0.0/16', ipipMode: 'CrossSubnet', natOutgoing: true });
    assert.deepEqual(foldIPPoolV1({ ipip: { enabled: true } }), { ipipMode: 'Always' });
    assert.deepEqual(foldIPPoolV1({ ipip: { enabled: false }, 'nat-outgoing': false }), { ipipMode: 'Never' });
    assert.deepEqual(foldIPPoolV1({ ipipMode: 'Never', ipip: { enabled: true } }), { ipipMode: 'Never' });
    const plain = { cidr: '10.0.0.0/16', ipipMode: 'Always' };
    assert.equal(foldIPPoolV1(plain), plain);
    const k = resourceKey('IPPool', 'old');
    const cr: K8sObject = { apiVersion: 'crd.projectcalico.org/v1', kind: 'IPPool', metadata: { name: 'old' }, spec: { cidr: '10.0.0.0/16', ipip: { enabled: true, mode: 'always' }, 'nat-outgoing': true } };
    assert.deepEqual(JSON.parse(fromObject(refOfKey(k).kind, cr)!.value).spec, { cidr: '10.0.0.0/16', ipipMode: 'Always', natOutgoing: true });
  });
});

describe('IPAM objects', () => {
  it('a block keeps every field; affinity null is left out of the spec and back on read', () => {
    const k = blockKey(cidr('10.233.64.0/24'));
    const block = {
      cidr: '10.233.64.0/24',
      affinity: 'host:w1',
      affinityClaimTime: '2026-01-01T00:00:00Z',
      allocations: [0, null, 1],
      unallocated: [1],
      attributes: [{ handle_id: 'h1', secondary: { namespace: 'a' } }, { handle_id: 'h2' }],
      deleted: false,
      sequenceNumber: 5,
      sequenceNumberForAllocation: { '0': 3 },
    };
    const o = toObject(k, refOfKey(k), JSON.stringify(block));
    assert.equal(o.kind, 'IPAMBlock');
    assert.equal(o.metadata.name, '10-233-64-0-24');
    assert.deepEqual(o.spec, { ...block, strictAffinity: false });
    assert.deepEqual(JSON.parse(fromObject(refOfKey(k).kind, o)!.value), block);
    const free = toObject(k, refOfKey(k), JSON.stringify({ ...block, affinity: null }));
    assert.equal('affinity' in free.spec!, false);
    const back = fromObject(refOfKey(k).kind, free)!;
    assert.equal(back.key, k);
    assert.equal(JSON.parse(back.value).affinity, null);
  });
  it('an affinity is {state,node,type,cidr,deleted:"false"} with Calico labels', () => {
    const k = affinityKey('w1', cidr('10.233.64.0/24'));
    const o = toObject(k, refOfKey(k), JSON.stringify({ state: 'pending', deleted: false }));
    assert.deepEqual(o.spec, { state: 'pending', node: 'w1', type: 'host', cidr: '10.233.64.0/24', deleted: 'false' });
    assert.equal(o.metadata.labels!['projectcalico.org/ip-version'], '4');
    assert.equal(o.metadata.labels!['projectcalico.org/affinity-type'], 'host');
    assert.equal(o.metadata.labels!['projectcalico.org/hostname-hash'], hostnameHash('w1'));
    assert.match(hostnameHash('w1'), /^[A-Z2-7]{52}$/);
    const kv = fromObject(refOfKey(k).kind, o)!;
    assert.equal(kv.key, k);
    assert.deepEqual(JSON.parse(kv.value), { state: 'pending', deleted: false });
    assert.equal(isSoftDeleted(refOfKey(k).kind, o), false);
    const d = softDeleted(refOfKey(k).kind, o);
    assert.equal(d.spec!.deleted, 'true');
    assert.equal(isSoftDeleted(refOfKey(k).kind, d), true);
  });
  it('a handle keeps its ID (any case) in spec.handleID', () => {
    const k = handleKey('k8s-pod-network.ABC');
    const o = toObject(k, refOfKey(k), JSON.stringify({ block: { '10.0.0.0/26': 2 }, deleted: false }));
    assert.deepEqual([o.metadata.name, o.spec], ['k8s-pod-network.abc', { handleID: 'k8s-pod-network.ABC', block: { '10.0.0.0/26': 2 }, deleted: false }]);
    const kv = fromObject(refOfKey(k).kind, o)!;
    assert.deepEqual([kv.key, JSON.parse(kv.value)], [k, { block: { '10.0.0.0/26': 2 }, deleted: false }]);
    assert.equal(isSoftDeleted(refOfKey(k).kind, softDeleted(refOfKey(k).kind, o)), true);
  });
});
