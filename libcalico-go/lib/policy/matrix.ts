// The reachability matrix (who answers whom): pure formatting and expectation checking, shared by
// the evaluator's truth tables (truth-table.ts) and tortie-lab's probes with real packets (the
// probing itself is lab/pkg/nsagent.ts, run inside each source pod's namespace).

/** results[from][to] = answered. */
export type Matrix = Record<string, Record<string, boolean>>;
/** expect[from][to]: true, false or "any"; pairs not listed are expected to answer. */
export type Expectation = Record<string, Record<string, boolean | 'any'>>;

export interface Mismatch {
  from: string;
  to: string;
  expected: boolean;
  got: boolean;
}

export function parseExpectation(text: string): Expectation {
  const v = JSON.parse(text) as unknown;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('expectation must be an object {"NS/POD": {"NS/POD": true|false|"any"}}');
  for (const [from, row] of Object.entries(v)) {
    if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new Error(`expectation for ${from} must be an object`);
    for (const [to, x] of Object.entries(row)) {
      if (x !== true && x !== false && x !== 'any') throw new Error(`expectation ${from} → ${to} must be true, false or "any"`);
    }
  }
  return v as Expectation;
}

export function expected(exp: Expectation | undefined, from: string, to: string): boolean | 'any' {
  return exp?.[from]?.[to] ?? exp?.[from]?.['*'] ?? exp?.['*']?.[to] ?? true;
}

export function mismatches(keys: readonly string[], m: Matrix, exp?: Expectation): Mismatch[] {
  const out: Mismatch[] = [];
  for (const from of keys) {
    for (const to of keys) {
      if (from === to) continue;
      const want = expected(exp, from, to);
      const got = m[from]?.[to] === true;
      if (want !== 'any' && want !== got) out.push({ from, to, expected: want, got });
    }
  }
  return out;
}

/**
 * A matrix with sources as rows and destinations as columns: `ok` answered, `FAIL` did not, `-`
 * the diagonal; a trailing `!` marks a cell that differs from the expectation, `?` a cell whose
 * expectation is "any".
 */
export function formatMatrix(keys: readonly string[], m: Matrix, exp?: Expectation): string {
  const head = 'FROM \\ TO';
  const rows: string[][] = [[head, ...keys]];
  for (const from of keys) {
    const row = [from];
    for (const to of keys) {
      if (from === to) {
        row.push('-');
        continue;
      }
      const got = m[from]?.[to] === true;
      const want = expected(exp, from, to);
      row.push((got ? 'ok' : 'FAIL') + (!exp ? '' : want === 'any' ? '?' : want !== got ? '!' : ''));
    }
    rows.push(row);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}

export function summary(keys: readonly string[], m: Matrix, exp?: Expectation): string {
  const total = keys.length * (keys.length - 1);
  let ok = 0;
  for (const from of keys) for (const to of keys) if (from !== to && m[from]?.[to] === true) ok++;
  const bad = mismatches(keys, m, exp);
  const base = `${ok}/${total} pairs answered`;
  if (!exp) return bad.length === 0 ? `${base}\n` : `${base}; ${bad.length} did not\n`;
  return bad.length === 0 ? `${base}; all as expected\n` : `${base}; ${bad.length} not as expected: ${bad.map((b) => `${b.from}→${b.to} (expected ${b.expected})`).join(', ')}\n`;
}

/** The --json form: {"NS/POD": {"NS/POD": bool}} without the diagonal, keys in pod order. */
export function matrixJson(keys: readonly string[], m: Matrix): Matrix {
  const out: Matrix = {};
  for (const from of keys) {
    out[from] = {};
    for (const to of keys) if (from !== to) out[from]![to] = m[from]?.[to] === true;
  }
  return out;
}
