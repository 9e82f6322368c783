import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compareVersions, highestVersion, selectVersion, versionAtLeast, versionResponse } from './version.js';

const SUPPORTED = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

describe('versions', () => {
  it('compares numerically', () => {
    assert.equal(compareVersions('0.10.0', '0.9.9'), 1);
    assert.equal(compareVersions('1.0.0', '1.0.0'), 0);
    assert.equal(compareVersions('0.3.1', '0.4.0'), -1);
    assert.throws(() => compareVersions('1.0', '1.0.0'));
    assert.equal(versionAtLeast('0.4.0', '0.4.0'), true);
    assert.equal(versionAtLeast('0.3.1', '0.4.0'), false);
    assert.equal(versionAtLeast('garbage', '0.1.0'), false);
  });

  it('selects the highest supported', () => {
    assert.equal(highestVersion(['0.4.0', 'x', '1.0.0', '0.3.1']), '1.0.0');
    assert.equal(selectVersion(['0.4.0', '1.0.0', '1.1.0', '2.0.0'], SUPPORTED), '1.1.0');
    assert.equal(selectVersion(['2.0.0'], SUPPORTED), undefined);
  });
});

describe('versionResponse (VERSION output)', () => {
  it('echoes a supported requested version', () => {
    assert.deepEqual(versionResponse('0.4.0', SUPPORTED), { cniVersion: '0.4.0', supportedVersions: SUPPORTED });
    assert.equal(JSON.stringify(versionResponse('1.0.0', SUPPORTED)), '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}');
  });

  it('answers with the highest supported for unsupported or absent requests', () => {
    assert.equal(versionResponse('2.0.0', SUPPORTED).cniVersion, '1.1.0');
    assert.equal(versionResponse('0.2.0', SUPPORTED).cniVersion, '1.1.0');
    assert.equal(versionResponse(undefined, SUPPORTED).cniVersion, '1.1.0');
  });

  it('sorts and deduplicates the supported list', () => {
    assert.deepEqual(versionResponse(undefined, ['1.0.0', '0.3.1', '1.0.0', '0.4.0']).supportedVersions, ['0.3.1', '0.4.0', '1.0.0']);
  });
});
