// cluster check's table and its --window parsing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../commands/args.js';
import { parseWindow } from '../commands/cluster.js';
import { renderFindings } from './cluster-check.js';

describe('cluster check output', () => {
  it('says so when nothing is found', () => {
    assert.equal(renderFindings([], { nodes: 5, reporting: 5, window: '10m' }), 'Checked 5 node(s), 5 reporting (CalicoNodeStatus); events of the last 10m.\nNo problems found.\n');
  });

  it('one row per finding: severity, finding, evidence, fix; then the totals', () => {
    const out = renderFindings(
      [
        { kind: 'mtu', severity: 'error', nodes: ['n3'], finding: 'Pod MTU does not fit', evidence: ['pod 1500', 'underlay 1400'], fix: 'Lower it.' },
        { kind: 'ipam', severity: 'warning', nodes: [], finding: '1 leaked', evidence: ['10.0.0.5'], fix: 'Release it.' },
      ],
      { nodes: 3, reporting: 2, window: '30s' },
    );
    const lines = out.split('\n');
    assert.equal(lines[0], 'Checked 3 node(s), 2 reporting (CalicoNodeStatus); events of the last 30s.');
    assert.match(lines[2]!, /^\| SEVERITY \| +FINDING +\| +EVIDENCE +\| +FIX +\|$/);
    assert.match(out, /\| ERROR +\| Pod MTU does not fit +\| pod 1500; underlay 1400 +\| Lower it\. +\|/);
    assert.match(out, /\| WARNING +\| 1 leaked +\| 10\.0\.0\.5 +\| Release it\. +\|/);
    assert.equal(lines.at(-2), '2 finding(s): 1 error(s), 1 warning(s).');
  });

  it('--window takes 30s, 10m, 1h and names a bad value', () => {
    assert.equal(parseWindow('30s'), 30_000);
    assert.equal(parseWindow('10m'), 600_000);
    assert.equal(parseWindow('1h'), 3_600_000);
    assert.throws(() => parseWindow('5x'), (e: unknown) => e instanceof UsageError && /--window: "5x" is not a duration/.test(e.message));
  });
});
