import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CniError } from './errors.js';
import { isValidAttachment, parseGcAttachments } from './gc.js';

describe('parseGcAttachments', () => {
  it('absent → null (no list given)', () => {
    assert.equal(parseGcAttachments({ cniVersion: '1.1.0', name: 'n' }), null);
    assert.equal(parseGcAttachments({ 'cni.dev/valid-attachments': null }), null);
  });

  it('an empty list is not null', () => {
    assert.deepEqual(parseGcAttachments({ 'cni.dev/valid-attachments': [] }), []);
  });

  it('reads cni.dev/valid-attachments (spec HEAD)', () => {
    assert.deepEqual(parseGcAttachments({ 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }] }), [
      { containerID: 'c1', ifname: 'eth0' },
    ]);
  });

  it('reads cni.dev/attachments (spec-v1.1.0 tag)', () => {
    assert.deepEqual(parseGcAttachments({ 'cni.dev/attachments': [{ containerID: 'c2', ifname: 'net1', extra: 1 }] }), [
      { containerID: 'c2', ifname: 'net1' },
    ]);
  });

  it('both keys (libcni >= 1.2, as observed): union without duplicates', () => {
    const list = [
      { containerID: 'cnitool-9cd7', ifname: 'eth0' },
      { containerID: 'other-ctr', ifname: 'net1' },
    ];
    const config = {
      'cni.dev/attachments': [...list, { containerID: 'only-legacy', ifname: 'eth0' }],
      'cni.dev/valid-attachments': list,
      cniVersion: '1.1.0',
      name: 'v11',
      type: 'dump',
    };
    const got = parseGcAttachments(config)!;
    assert.deepEqual(got, [...list, { containerID: 'only-legacy', ifname: 'eth0' }]);
    assert.equal(isValidAttachment(got, 'other-ctr', 'net1'), true);
    assert.equal(isValidAttachment(got, 'other-ctr', 'eth0'), false);
  });

  it('malformed lists are code 7 naming the key', () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ 'cni.dev/valid-attachments': {} }, 'cni.dev/valid-attachments'],
      [{ 'cni.dev/attachments': ['c1'] }, 'cni.dev/attachments[0]'],
      [{ 'cni.dev/valid-attachments': [{ ifname: 'eth0' }] }, 'containerID'],
      [{ 'cni.dev/valid-attachments': [{ containerID: 'c', ifname: 3 }] }, 'ifname'],
    ];
    for (const [cfg, word] of bad) {
      assert.throws(() => parseGcAttachments(cfg), (e: unknown) => e instanceof CniError && e.code === 7 && e.message.includes(word));
    }
  });
});
