// -o yaml / -o json as calicoctl prints them: YAML with keys sorted (Go's yaml-via-JSON), one
// object for one resource and a `<Kind>List` for several.
import { stringify } from 'yaml';
import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v as object)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

export function asDocument(kind: string, items: Resource[], single: boolean, revision?: string): unknown {
  if (single && items.length === 1) return items[0];
  return {
    apiVersion: 'projectcalico.org/v3',
    items,
    kind: `${kind}List`,
    metadata: revision ? { resourceVersion: revision } : {},
  };
}

export function toYaml(doc: unknown): string {
  return stringify(sortKeys(doc), { lineWidth: 0 });
}

export function toJson(doc: unknown): string {
  return JSON.stringify(doc, null, 2) + '\n';
}
