// manifests/crds.yaml is what scripts/gen-crds.mjs makes, has no preserve-unknown-fields, and
// agrees with the backend's mapping (every CRD kind the backend writes, with its kind and scope).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { CRD_KINDS, crdName } from './mapping.js';

const root = new URL('../../../../..', import.meta.url).pathname;

interface CRD {
  metadata: { name: string };
  spec: { group: string; scope: string; names: { kind: string; plural: string }; preserveUnknownFields: boolean; versions: { name: string; served: boolean; storage: boolean; schema: { openAPIV3Schema: unknown } }[] };
}

describe('manifests/crds.yaml', () => {
  const text = readFileSync(`${root}manifests/crds.yaml`, 'utf8');
  const crds = parseAllDocuments(text).map((d) => d.toJS() as CRD).filter(Boolean);

  it('is up to date with scripts/gen-crds.mjs', () => {
    const r = spawnSync(process.execPath, [`${root}scripts/gen-crds.mjs`, '--check'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  it('19 crd.projectcalico.org/v1 CRDs, one served storage version, pruning on', () => {
    assert.equal(crds.length, 19);
    for (const c of crds) {
      assert.equal(c.spec.group, 'crd.projectcalico.org');
      assert.equal(c.metadata.name, `${c.spec.names.plural}.crd.projectcalico.org`);
      assert.equal(c.spec.preserveUnknownFields, false);
      assert.deepEqual(c.spec.versions.map((v) => [v.name, v.served, v.storage]), [['v1', true, true]]);
    }
    assert.doesNotMatch(text, /x-kubernetes-preserve-unknown-fields/);
  });

  it('has every kind the backend maps, with the same kind and scope', () => {
    const byName = new Map(crds.map((c) => [c.metadata.name, c]));
    for (const k of CRD_KINDS) {
      const c = byName.get(crdName(k));
      assert.ok(c, `${crdName(k)} is in the manifest`);
      assert.equal(c.spec.names.kind, k.crKind);
      assert.equal(c.spec.scope, k.namespaced ? 'Namespaced' : 'Cluster');
    }
  });

  it('ports are int-or-string', () => {
    const np = crds.find((c) => c.spec.names.kind === 'NetworkPolicy')!;
    const schema = np.spec.versions[0].schema.openAPIV3Schema as { properties: { spec: { properties: { ingress: { items: { properties: { destination: { properties: { ports: { items: unknown } } } } } } } } } };
    assert.deepEqual(schema.properties.spec.properties.ingress.items.properties.destination.properties.ports.items, {
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      'x-kubernetes-int-or-string': true,
    });
  });
});
