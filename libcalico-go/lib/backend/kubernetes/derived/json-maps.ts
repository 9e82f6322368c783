// String maps stored as JSON in a Kubernetes annotation, as Go's encoding/json writes them (keys sorted).

/** JSON of a string map with its keys in sorted order (what Go's json.Marshal of a map gives). */
export function stringMapJSON(m: Record<string, string>): string {
  const sorted: Record<string, string> = {};
  for (const k of Object.keys(m).sort()) sorted[k] = m[k]!;
  return JSON.stringify(sorted);
}

/** Parses an annotation holding a JSON string map; null when absent, not JSON, or not a string map. */
export function parseStringMap(text: string | undefined): Record<string, string> | null {
  if (text === undefined) return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) return null;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (typeof val !== 'string') return null;
    out[k] = val;
  }
  return out;
}
