// Selector syntax tree: evaluation against a label map and Calico's canonical rendering.
//
// Canonical form (what Calico hashes selectors by): `all()`, `global()`, `has(k)`,
// `k == "v"`, `k != "v"`, `k contains "v"`, `k starts with "v"`, `k ends with "v"`,
// `k in {"a", "b"}` / `k not in {"a", "b"}` (values sorted and de-duplicated), `!x`,
// `(a && b && c)`, `(a || b)`. A value is quoted with `"` unless it contains `"`, then with `'`.

export type Labels = Readonly<Record<string, string>>;

export type SelectorNode =
  | AllNode
  | GlobalNode
  | HasNode
  | CompareNode
  | SetNode
  | NotNode
  | AndNode
  | OrNode;

export interface AllNode {
  type: 'all';
}
export interface GlobalNode {
  type: 'global';
}
export interface HasNode {
  type: 'has';
  label: string;
}
export type CompareOp = '==' | '!=' | 'contains' | 'starts with' | 'ends with';
export interface CompareNode {
  type: 'compare';
  op: CompareOp;
  label: string;
  value: string;
}
export interface SetNode {
  type: 'set';
  op: 'in' | 'not in';
  label: string;
  /** Sorted, without duplicates. */
  values: readonly string[];
  /** The same values, for lookups. */
  set: ReadonlySet<string>;
}
export interface NotNode {
  type: 'not';
  operand: SelectorNode;
}
export interface AndNode {
  type: 'and';
  operands: readonly SelectorNode[];
}
export interface OrNode {
  type: 'or';
  operands: readonly SelectorNode[];
}

function lookup(labels: Labels, key: string): string | undefined {
  return Object.hasOwn(labels, key) ? labels[key] : undefined;
}

export function evaluateNode(n: SelectorNode, labels: Labels): boolean {
  switch (n.type) {
    case 'all':
    case 'global':
      return true;
    case 'has':
      return Object.hasOwn(labels, n.label);
    case 'compare': {
      const v = lookup(labels, n.label);
      switch (n.op) {
        case '==':
          return v === n.value;
        case '!=':
          return v !== n.value; // also true when absent
        case 'contains':
          return v?.includes(n.value) === true;
        case 'starts with':
          return v?.startsWith(n.value) === true;
        case 'ends with':
          return v?.endsWith(n.value) === true;
      }
      return false;
    }
    case 'set': {
      const v = lookup(labels, n.label);
      if (n.op === 'in') return v !== undefined && n.set.has(v);
      return v === undefined || !n.set.has(v);
    }
    case 'not':
      return !evaluateNode(n.operand, labels);
    case 'and':
      for (const o of n.operands) if (!evaluateNode(o, labels)) return false;
      return true;
    case 'or':
      for (const o of n.operands) if (evaluateNode(o, labels)) return true;
      return false;
  }
}

function quote(s: string): string {
  return s.includes('"') ? `'${s}'` : `"${s}"`;
}

export function renderNode(n: SelectorNode): string {
  switch (n.type) {
    case 'all':
      return 'all()';
    case 'global':
      return 'global()';
    case 'has':
      return `has(${n.label})`;
    case 'compare':
      return `${n.label} ${n.op} ${quote(n.value)}`;
    case 'set':
      return `${n.label} ${n.op} {${n.values.map(quote).join(', ')}}`;
    case 'not':
      return '!' + renderNode(n.operand);
    case 'and':
      return '(' + n.operands.map(renderNode).join(' && ') + ')';
    case 'or':
      return '(' + n.operands.map(renderNode).join(' || ') + ')';
  }
}

/** Every label name the selector mentions, sorted. */
export function labelsOf(n: SelectorNode, out: Set<string> = new Set()): Set<string> {
  switch (n.type) {
    case 'has':
    case 'compare':
    case 'set':
      out.add(n.label);
      break;
    case 'not':
      labelsOf(n.operand, out);
      break;
    case 'and':
    case 'or':
      for (const o of n.operands) labelsOf(o, out);
      break;
  }
  return out;
}

/** True when the tree contains `global()` anywhere. */
export function containsGlobal(n: SelectorNode): boolean {
  switch (n.type) {
    case 'global':
      return true;
    case 'not':
      return containsGlobal(n.operand);
    case 'and':
    case 'or':
      return n.operands.some(containsGlobal);
    default:
      return false;
  }
}
