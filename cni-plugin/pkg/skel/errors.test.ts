import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CniError, formatError, toCniError } from './errors.js';

describe('formatError', () => {
  it('spec shape, details omitted when empty', () => {
    assert.equal(formatError(new CniError(7, 'missing network name'), '1.0.0'), '{"cniVersion":"1.0.0","code":7,"msg":"missing network name"}');
    assert.equal(formatError(new CniError(11, 'try again later', 'ipam datastore locked'), '0.4.0'), '{"cniVersion":"0.4.0","code":11,"msg":"try again later","details":"ipam datastore locked"}');
    assert.equal(formatError(new CniError(4, 'x', '')), '{"code":4,"msg":"x"}');
  });

  it('toCniError: plain errors become 999', () => {
    assert.deepEqual({ ...JSON.parse(formatError(toCniError(new Error('failed to open netns "/run/netns/nope"')))) }, {
      code: 999,
      msg: 'failed to open netns "/run/netns/nope"',
    });
    assert.equal(toCniError('boom').code, 999);
    const e = new CniError(50, 'not ready');
    assert.equal(toCniError(e), e);
    assert.equal(e.msg, 'not ready');
  });
});
