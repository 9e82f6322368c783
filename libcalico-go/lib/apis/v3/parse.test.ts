import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ParseError } from './errors.js';
import { parseDocuments } from './parse.js';
import { validateResource } from './validate.js';

const seedYaml = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: default-pool
spec:
  blockSize: 24
  cidr: 10.233.64.0/18
  ipipMode: Always
  natOutgoing: true
  nodeSelector: all()
  vxlanMode: Never
`;

function parseErr(text: string, source?: string): ParseError {
  try {
    parseDocuments(text, source);
  } catch (e) {
    assert.ok(e instanceof ParseError, `expected ParseError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a ParseError');
}

describe('parseDocuments', () => {
  it('reads one YAML document', () => {
    const docs = parseDocuments(seedYaml, 'pool.yaml');
    assert.equal(docs.length, 1);
    assert.deepEqual(docs[0], {
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPPool',
      metadata: { name: 'default-pool' },
      spec: { blockSize: 24, cidr: '10.233.64.0/18', ipipMode: 'Always', natOutgoing: true, nodeSelector: 'all()', vxlanMode: 'Never' },
    });
    assert.equal(validateResource(docs[0]).spec!.ipipMode, 'Always');
  });

  it('reads `ipipMode: Off` as the string "Off" (YAML 1.2), which validates to Never', () => {
    const docs = parseDocuments(seedYaml.replace('ipipMode: Always', 'ipipMode: Off'));
    assert.equal((docs[0] as any).spec.ipipMode, 'Off');
    assert.equal(validateResource(docs[0]).spec!.ipipMode, 'Never');
  });

  it('splits multi-document YAML and skips empty documents', () => {
    const text = `---\n${seedYaml}---\n---\napiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: p1}\n---\n# only a comment\n`;
    const docs = parseDocuments(text) as any[];
    assert.deepEqual(
      docs.map((d) => `${d.kind}/${d.metadata.name}`),
      ['IPPool/default-pool', 'Profile/p1'],
    );
  });

  it('accepts JSON, a JSON array, and empty input', () => {
    const obj = { apiVersion: 'projectcalico.org/v3', kind: 'Tier', metadata: { name: 't1' }, spec: { order: 100 } };
    assert.deepEqual(parseDocuments(JSON.stringify(obj, null, 2), 'tier.json'), [obj]);
    assert.deepEqual(parseDocuments(JSON.stringify([obj, obj])), [obj, obj]);
    assert.deepEqual(parseDocuments(''), []);
    assert.deepEqual(parseDocuments('# nothing\n'), []);
  });

  it('flattens kind: List and <Kind>List, filling kind/apiVersion of typed list items', () => {
    const text = `apiVersion: v1
kind: List
items:
- apiVersion: projectcalico.org/v3
  kind: Profile
  metadata: {name: a}
- apiVersion: projectcalico.org/v3
  kind: IPPoolList
  items:
  - metadata: {name: p1}
    spec: {cidr: 10.1.0.0/16}
  - apiVersion: projectcalico.org/v3
    kind: IPPool
    metadata: {name: p2}
    spec: {cidr: 10.2.0.0/16}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicyList
metadata: {resourceVersion: "5"}
items: []
`;
    const docs = parseDocuments(text) as any[];
    assert.deepEqual(
      docs.map((d) => [d.apiVersion, d.kind, d.metadata.name]),
      [
        ['projectcalico.org/v3', 'Profile', 'a'],
        ['projectcalico.org/v3', 'IPPool', 'p1'],
        ['projectcalico.org/v3', 'IPPool', 'p2'],
      ],
    );
    for (const d of docs) assert.doesNotThrow(() => validateResource(d));
  });

  it('reports YAML syntax errors with the source name and line', () => {
    const e = parseErr(`${seedYaml}---\napiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: [broken\n`, 'pools.yaml');
    assert.equal(e.source, 'pools.yaml');
    assert.ok(e.line >= 16, `line ${e.line}`);
    assert.match(e.message, /^pools\.yaml:\d+:\d+: /);

    const e2 = parseErr('a: b\n  c: d\n', 'x.yaml');
    assert.equal(e2.line, 1);
    assert.match(e2.message, /^x\.yaml:1:\d+: /);

    const e3 = parseErr('kind: IPPool\nkind: IPPool\n', 'dup.yaml');
    assert.equal(e3.line, 2);
    assert.match(e3.message, /unique/i);
  });

  it('reports JSON syntax errors with the line', () => {
    const e = parseErr('{\n  "kind": "IPPool",\n  "metadata": {"name": "p1",, }\n}\n', 'pool.json');
    assert.equal(e.line, 3);
    assert.match(e.message, /^pool\.json:3:\d+: /);
  });

  it('uses <input> when no source is given', () => {
    assert.match(parseErr('a: [').message, /^<input>:\d+/);
  });

  it('refuses documents that are not mappings, naming the line', () => {
    const e = parseErr(`${seedYaml}---\njust a string\n`, 'f.yaml');
    assert.equal(e.line, 13);
    assert.match(e.message, /^f\.yaml:13: expected a resource/);
  });
});
