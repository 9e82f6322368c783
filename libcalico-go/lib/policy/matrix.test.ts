import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatMatrix, matrixJson, mismatches, parseExpectation, summary } from './matrix.js';

const keys = ['default/a', 'default/b', 'other/c'];
const m = {
  'default/a': { 'default/b': true, 'other/c': false },
  'default/b': { 'default/a': true, 'other/c': true },
  'other/c': { 'default/a': true, 'default/b': true },
};

describe('probe matrix', () => {
  it('formats rows as sources and columns as destinations', () => {
    assert.equal(
      formatMatrix(keys, m),
      [
        'FROM \\ TO  default/a  default/b  other/c',
        'default/a  -          ok         FAIL',
        'default/b  ok         -          ok',
        'other/c    ok         ok         -',
        '',
      ].join('\n'),
    );
    assert.equal(summary(keys, m), '5/6 pairs answered; 1 did not\n');
  });

  it('marks cells against an expectation', () => {
    const exp = parseExpectation('{"default/a": {"other/c": false}, "other/c": {"*": "any"}, "default/b": {"default/a": false}}');
    const text = formatMatrix(keys, m, exp);
    assert.match(text, /default\/a {2}- {10}ok {9}FAIL\n/);
    assert.match(text, /default\/b {2}ok! {8}- {10}ok\n/);
    assert.match(text, /other\/c {4}ok\? {8}ok\? {8}-$/m);
    assert.deepEqual(mismatches(keys, m, exp), [{ from: 'default/b', to: 'default/a', expected: false, got: true }]);
    assert.match(summary(keys, m, exp), /5\/6 pairs answered; 1 not as expected: default\/b→default\/a \(expected false\)/);
    assert.deepEqual(mismatches(keys, m, parseExpectation('{"default/a": {"other/c": false}}')), []);
    assert.equal(summary(keys, m, parseExpectation('{"default/a": {"other/c": false}}')), '5/6 pairs answered; all as expected\n');
  });

  it('json form has every ordered pair and no diagonal; missing results are false', () => {
    const j = matrixJson([...keys, 'x/new'], m);
    assert.deepEqual(Object.keys(j), ['default/a', 'default/b', 'other/c', 'x/new']);
    assert.deepEqual(j['default/a'], { 'default/b': true, 'other/c': false, 'x/new': false });
    assert.deepEqual(j['x/new'], { 'default/a': false, 'default/b': false, 'other/c': false });
  });

  it('rejects malformed expectations', () => {
    assert.throws(() => parseExpectation('[]'));
    assert.throws(() => parseExpectation('{"a": {"b": "yes"}}'), /true, false or "any"/);
    assert.throws(() => parseExpectation('{"a": true}'));
  });

  it('one pod or none: an empty matrix answers', () => {
    assert.equal(summary(['a/b'], {}), '0/0 pairs answered\n');
    assert.deepEqual(mismatches([], {}), []);
  });
});
