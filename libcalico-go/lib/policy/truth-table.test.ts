// Every truth-table case under testdata/cases holds in the evaluator.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { caseFiles, expectationOf, loadCase, parseCase, probeLabel, runCase } from './truth-table.js';

// Tests run from dist/; the data stays in the source tree.
const CASES = fileURLToPath(new URL('../../../../libcalico-go/lib/policy/testdata/cases', import.meta.url));

describe('policy truth tables', () => {
  const files = caseFiles(CASES);
  it('has at least 20 cases', () => assert.ok(files.length >= 20, `${files.length} cases`));
  for (const f of files) {
    let results: ReturnType<typeof runCase>;
    let c: ReturnType<typeof loadCase>;
    try {
      c = loadCase(f);
      results = runCase(c);
    } catch (e) {
      it(`${f} loads`, () => assert.fail((e as Error).message));
      continue;
    }
    for (const r of results) {
      it(`${c.name} ${probeLabel(r.probe)}`, () => assert.ok(r.ok, `\n${c.description ?? ''}\n${r.text}`));
    }
  }

  it('prints the matrix as tortie-lab probe does', () => {
    const c = loadCase(join(CASES, '05-pod-selector.yaml'));
    const [r] = runCase(c);
    const lines = r!.text.split('\n');
    assert.equal(lines[0], 'FROM \\ TO  x/a   x/b  x/c  y/a  y/b  y/c  z/a  z/b  z/c');
    assert.equal(lines[1], 'x/a        -     ok   ok   ok   ok   ok   ok   ok   ok');
    assert.equal(lines[2], 'x/b        ok    -    ok   ok   ok   ok   ok   ok   ok');
    assert.equal(lines[4], 'y/a        FAIL  ok   ok   -    ok   ok   ok   ok   ok');
    assert.equal(lines[10], '65/72 pairs answered; all as expected');
  });

  it('expands exceptions in order, later ones winning', () => {
    const exp = expectationOf({ protocol: 'TCP', port: 80, default: true, exceptions: [{ from: '*', to: 'x/*', reachable: false }, { from: 'y/a', to: 'x/b', reachable: true }] });
    assert.equal(exp['y/a']!['x/b'], true);
    assert.equal(exp['y/a']!['x/a'], false);
    assert.equal(exp['x/a']!['y/a'], true);
  });

  it('refuses malformed cases naming the place', () => {
    assert.throws(() => parseCase('probes: []\n', 'c'), /c: probes must be a non-empty list/);
    assert.throws(() => parseCase('probes: [{protocol: GRE, port: 1, default: true}]\n', 'c'), /probes\[0\]: protocol "GRE"/);
    assert.throws(() => parseCase('probes: [{port: 80, default: true, exceptions: [{from: x, to: y/a, reachable: true}]}]\n', 'c'), /exceptions\[0\]/);
    assert.throws(() => parseCase('policies: ["${ip:q/q}"]\nprobes: [{port: 80, default: true}]\n', 'c'), /unknown pod q\/q/);
  });

  it('substitutes pod addresses', () => {
    const c = parseCase('policies: ["${cidr:x/a}", "${ip:z/c}"]\nprobes: [{port: 80, default: true}]\n', 'c', { 'x/a': '10.1.2.3', 'z/c': 'fd00::1' });
    assert.deepEqual(c.policies, ['10.1.2.3/32', 'fd00::1']);
  });
});
