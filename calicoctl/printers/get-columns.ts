// `calicoctl get` table output (`-o ps`, `-o wide`, `-o custom-columns=...`).
//
// calicoctl renders each column through a Go template over the typed resource, so a cell
// prints like Go prints the field: a missing bool is `false`, a missing *bool or *float64 is
// `<nil>`, floats use `%v` (1000000 → `1e+06`), lists are joined with `,`, maps become sorted
// `k=v` pairs. The functions here take the plain objects from the YAML/JSON form of the
// resources and reproduce those strings.

import { versionAtLeast } from './compat.js';
import { formatGoFloatV } from './go-format.js';
import { renderTabTable } from './tabwriter.js';

/** A resource as it appears in Calico's YAML: `{apiVersion, kind, metadata, spec}`. */
export interface GetResource {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  spec?: Record<string, unknown>;
}

export interface GetContext {
  /**
   * The cluster-wide AS number printed in parentheses for nodes without their own
   * (`spec.asNumber` of BGPConfiguration `default`; `64512` when unset; `unknown` when it could
   * not be read). Default `64512`.
   */
  globalAS?: string | number;
  /** Same as globalAS (either spelling is accepted). */
  globalASNumber?: string | number;
  /** The calicoctl release to imitate (column sets changed over time); see compat.ts. */
  calicoVersion?: string;
}

export interface GetColumn {
  heading: string;
  cell: (r: GetResource, ctx: GetContext) => string;
}

interface KindColumns {
  kind: string;
  namespaced: boolean;
  ps: (ctx: GetContext) => string[];
  wide: (ctx: GetContext) => string[];
  cells: Record<string, (r: GetResource, ctx: GetContext) => string>;
}

// ---- Go value printing ---------------------------------------------------------------------

function spec(r: GetResource): Record<string, unknown> {
  return r.spec ?? {};
}

function field(r: GetResource, path: string): unknown {
  let v: unknown = spec(r);
  for (const key of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** Go's %v of a scalar or composite value (struct-like objects print as `{v1 v2}`). */
function goValue(v: unknown): string {
  if (v === undefined || v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return Number.isInteger(v) && Math.abs(v) < 1e21 ? String(v) : formatGoFloatV(v);
  if (Array.isArray(v)) return '[' + v.map(goValue).join(' ') + ']';
  if (typeof v === 'object') return '{' + Object.values(v as Record<string, unknown>).map(goValue).join(' ') + '}';
  return String(v);
}

/** A Go `string` field: empty when absent. */
function str(v: unknown): string {
  if (v === undefined || v === null) return '';
  return goValue(v);
}

/** A Go `bool` field: `false` when absent. */
function bool(v: unknown): string {
  if (v === undefined || v === null) return 'false';
  if (typeof v === 'string') return v === 'true' ? 'true' : 'false';
  return v ? 'true' : 'false';
}

/** A Go `*bool` field: `<nil>` when absent. */
function boolPtr(v: unknown): string {
  if (v === undefined || v === null) return '<nil>';
  return bool(v);
}

/** A Go integer field: `0` when absent. */
function int(v: unknown): string {
  if (v === undefined || v === null || v === '') return '0';
  return typeof v === 'number' ? String(Math.trunc(v)) : String(v);
}

/** A Go `*float64` field printed with %v: `<nil>` when absent. */
function floatPtr(v: unknown): string {
  if (v === undefined || v === null) return '<nil>';
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isNaN(n) ? String(v) : formatGoFloatV(n);
}

/** numorstring.ASNumber: a number, or "a.b" (asdot) meaning a*65536+b; printed in decimal. */
function asNumber(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') {
    const m = /^(\d+)\.(\d+)$/.exec(v.trim());
    if (m) return String(Number(m[1]) * 65536 + Number(m[2]));
    return v.trim();
  }
  return '0';
}

/** calicoctl's `joinAndTruncate`: items printed with %v, joined; cut to maxLen with `...`. */
export function joinAndTruncate(items: unknown, sep: string, maxLen = 0): string {
  if (items === undefined || items === null) return '';
  let list: unknown[];
  if (Array.isArray(items)) {
    list = items;
  } else if (typeof items === 'object') {
    list = Object.entries(items as Record<string, unknown>)
      .map(([k, v]) => `${k}=${goValue(v)}`)
      .sort(byteOrder);
  } else {
    list = [items];
  }
  let buf = '';
  for (let i = 0; i < list.length; i++) {
    if (i > 0) buf += sep;
    buf += goValue(list[i]);
    if (maxLen > 0 && utf8Length(buf) > maxLen) {
      buf = utf8Prefix(buf, maxLen - 3) + '...';
      break;
    }
  }
  return buf;
}

function byteOrder(a: string, b: string): number {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return Buffer.compare(x, y);
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** The first n bytes of s (Go truncates the byte buffer; a split rune is dropped here). */
function utf8Prefix(s: string, n: number): string {
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length <= n) return s;
  return bytes.subarray(0, n).toString('utf8').replace(/\uFFFD$/, '');
}

const join = (v: unknown) => joinAndTruncate(v, ',');

/** WorkloadEndpoint ipNATs entries print as Go structs: `{<internalIP> <externalIP>}`. */
function natList(v: unknown): unknown {
  if (!Array.isArray(v)) return v;
  return v.map((n) => {
    if (n === null || typeof n !== 'object') return n;
    const o = n as Record<string, unknown>;
    return `{${str(o.internalIP)} ${str(o.externalIP)}}`;
  });
}

// ---- Column definitions ----------------------------------------------------------------------

const name = (r: GetResource) => str(r.metadata?.name);
const namespace = (r: GetResource) => str(r.metadata?.namespace);

const fixed = (h: string[]) => () => h;

const KINDS: KindColumns[] = [
  {
    kind: 'IPPool',
    namespaced: false,
    ps: fixed(['NAME', 'CIDR', 'SELECTOR']),
    wide: (ctx) => [
      'NAME',
      'CIDR',
      'NAT',
      'IPIPMODE',
      'VXLANMODE',
      'DISABLED',
      'DISABLEBGPEXPORT',
      'SELECTOR',
      ...(versionAtLeast(ctx.calicoVersion, 'v3.30.0') ? ['ASSIGNMENTMODE'] : []),
    ],
    cells: {
      NAME: name,
      CIDR: (r) => str(field(r, 'cidr')),
      NAT: (r) => bool(field(r, 'natOutgoing')),
      IPIPMODE: (r) => str(field(r, 'ipipMode')) || 'Never',
      VXLANMODE: (r) => str(field(r, 'vxlanMode')) || 'Never',
      DISABLED: (r) => bool(field(r, 'disabled')),
      DISABLEBGPEXPORT: (r) => bool(field(r, 'disableBGPExport')),
      SELECTOR: (r) => str(field(r, 'nodeSelector')),
      ASSIGNMENTMODE: (r) => str(field(r, 'assignmentMode')),
    },
  },
  {
    kind: 'WorkloadEndpoint',
    namespaced: true,
    ps: fixed(['WORKLOAD', 'NODE', 'NETWORKS', 'INTERFACE']),
    wide: fixed(['NAME', 'WORKLOAD', 'NODE', 'NETWORKS', 'INTERFACE', 'PROFILES', 'NATS']),
    cells: {
      NAME: name,
      NAMESPACE: namespace,
      NODE: (r) => str(field(r, 'node')),
      ORCHESTRATOR: (r) => str(field(r, 'orchestrator')),
      WORKLOAD: (r) => str(field(r, 'workload')) || str(field(r, 'pod')),
      NETWORKS: (r) => join(field(r, 'ipNetworks')),
      NATS: (r) => join(natList(field(r, 'ipNATs'))),
      PROFILES: (r) => join(field(r, 'profiles')),
      INTERFACE: (r) => str(field(r, 'interfaceName')),
    },
  },
  {
    kind: 'Node',
    namespaced: false,
    ps: fixed(['NAME']),
    wide: fixed(['NAME', 'ASN', 'IPV4', 'IPV6']),
    cells: {
      NAME: name,
      ASN: (r, ctx) => {
        const bgp = field(r, 'bgp');
        if (bgp === undefined || bgp === null) return '';
        const own = field(r, 'bgp.asNumber');
        // A set pointer prints its value (even 0); only an absent one falls back to the global AS.
        if (own !== undefined && own !== null) return asNumber(own);
        const global = ctx.globalAS ?? ctx.globalASNumber;
        return `(${global === undefined ? '64512' : asNumber(global)})`;
      },
      IPV4: (r) => str(field(r, 'bgp.ipv4Address')),
      IPV6: (r) => str(field(r, 'bgp.ipv6Address')),
    },
  },
  {
    kind: 'BGPPeer',
    namespaced: false,
    ps: fixed(['NAME', 'PEERIP', 'NODE', 'ASN']),
    wide: fixed(['NAME', 'PEERIP', 'NODE', 'ASN']),
    cells: {
      NAME: name,
      PEERIP: (r) => str(field(r, 'peerIP')),
      NODE: (r) => str(field(r, 'node')) || str(field(r, 'nodeSelector')) || '(global)',
      ASN: (r) => asNumber(field(r, 'asNumber')),
    },
  },
  {
    kind: 'BGPConfiguration',
    namespaced: false,
    ps: fixed(['NAME', 'LOGSEVERITY', 'MESHENABLED', 'ASNUMBER']),
    wide: fixed(['NAME', 'LOGSEVERITY', 'MESHENABLED', 'ASNUMBER']),
    cells: {
      NAME: name,
      LOGSEVERITY: (r) => str(field(r, 'logSeverityScreen')),
      MESHENABLED: (r) => {
        const v = field(r, 'nodeToNodeMeshEnabled');
        return v === undefined || v === null ? '-' : bool(v);
      },
      ASNUMBER: (r) => {
        const v = field(r, 'asNumber');
        return v === undefined || v === null ? '-' : asNumber(v);
      },
    },
  },
  {
    kind: 'Profile',
    namespaced: false,
    ps: fixed(['NAME']),
    wide: fixed(['NAME', 'LABELS']),
    cells: {
      NAME: name,
      LABELS: (r) => join(field(r, 'labelsToApply')),
    },
  },
  {
    kind: 'HostEndpoint',
    namespaced: false,
    ps: fixed(['NAME', 'NODE']),
    wide: fixed(['NAME', 'NODE', 'INTERFACE', 'IPS', 'PROFILES']),
    cells: {
      NAME: name,
      NODE: (r) => str(field(r, 'node')),
      INTERFACE: (r) => str(field(r, 'interfaceName')),
      IPS: (r) => join(field(r, 'expectedIPs')),
      PROFILES: (r) => join(field(r, 'profiles')),
    },
  },
  policyColumns('NetworkPolicy', true),
  policyColumns('GlobalNetworkPolicy', false),
  {
    kind: 'IPReservation',
    namespaced: false,
    ps: fixed(['NAME']),
    wide: fixed(['NAME', 'CIDRS']),
    cells: {
      NAME: name,
      CIDRS: (r) => joinAndTruncate(field(r, 'reservedCIDRs'), ',', 80),
    },
  },
  {
    kind: 'IPAMConfiguration',
    namespaced: false,
    ps: fixed(['NAME', 'STRICTAFFINITY', 'AUTOALLOCATEBLOCKS']),
    wide: fixed(['NAME', 'STRICTAFFINITY', 'AUTOALLOCATEBLOCKS', 'MAXBLOCKSPERHOST']),
    cells: {
      NAME: name,
      STRICTAFFINITY: (r) => bool(field(r, 'strictAffinity')),
      AUTOALLOCATEBLOCKS: (r) => bool(field(r, 'autoAllocateBlocks')),
      MAXBLOCKSPERHOST: (r) => int(field(r, 'maxBlocksPerHost')),
    },
  },
  {
    kind: 'Tier',
    namespaced: false,
    ps: fixed(['NAME', 'ORDER']),
    wide: fixed(['NAME', 'ORDER']),
    cells: {
      NAME: name,
      ORDER: (r) => floatPtr(field(r, 'order')),
    },
  },
  {
    kind: 'NetworkSet',
    namespaced: true,
    ps: fixed(['NAME']),
    wide: fixed(['NAME', 'NETS']),
    cells: {
      NAME: name,
      NAMESPACE: namespace,
      NETS: (r) => joinAndTruncate(field(r, 'nets'), ',', 80),
    },
  },
  {
    kind: 'GlobalNetworkSet',
    namespaced: false,
    ps: fixed(['NAME']),
    wide: fixed(['NAME', 'NETS']),
    cells: {
      NAME: name,
      NETS: (r) => joinAndTruncate(field(r, 'nets'), ',', 80),
    },
  },
  {
    kind: 'ClusterInformation',
    namespaced: false,
    ps: fixed(['NAME', 'CLUSTERGUID', 'CLUSTERTYPE', 'CALICOVERSION', 'DATASTOREREADY']),
    wide: fixed(['NAME', 'CLUSTERGUID', 'CLUSTERTYPE', 'CALICOVERSION', 'DATASTOREREADY']),
    cells: {
      NAME: name,
      CLUSTERGUID: (r) => str(field(r, 'clusterGUID')),
      CLUSTERTYPE: (r) => str(field(r, 'clusterType')),
      CALICOVERSION: (r) => str(field(r, 'calicoVersion')),
      DATASTOREREADY: (r) => boolPtr(field(r, 'datastoreReady')),
    },
  },
  nameOnly('FelixConfiguration'),
  nameOnly('KubeControllersConfiguration'),
];

function policyColumns(kind: string, namespaced: boolean): KindColumns {
  const tiered = (ctx: GetContext) => versionAtLeast(ctx.calicoVersion, 'v3.29.0');
  return {
    kind,
    namespaced,
    ps: (ctx) => (tiered(ctx) ? ['NAME', 'TIER'] : ['NAME']),
    wide: (ctx) => (tiered(ctx) ? ['NAME', 'TIER', 'ORDER', 'SELECTOR'] : ['NAME', 'ORDER', 'SELECTOR']),
    cells: {
      NAME: name,
      ...(namespaced ? { NAMESPACE: namespace } : {}),
      ORDER: (r) => floatPtr(field(r, 'order')),
      SELECTOR: (r) => str(field(r, 'selector')),
      TIER: (r) => str(field(r, 'tier')),
    },
  };
}

function nameOnly(kind: string): KindColumns {
  return { kind, namespaced: false, ps: fixed(['NAME']), wide: fixed(['NAME']), cells: { NAME: name } };
}

const BY_KIND = new Map(KINDS.map((k) => [k.kind.toLowerCase(), k]));

/** Column definitions for a kind; an unknown kind gets `NAME` only. */
function kindColumns(kind: string): KindColumns {
  return BY_KIND.get(kind.toLowerCase()) ?? nameOnly(kind);
}

function toColumn(def: KindColumns, heading: string): GetColumn {
  const cell = def.cells[heading];
  if (!cell) throw unknownHeading(def, heading);
  return { heading, cell };
}

function unknownHeading(def: KindColumns, heading: string): Error {
  // calicoctl lists the valid headings in Go map order (random); we list them sorted.
  const valid = Object.keys(def.cells).sort().join(', ');
  return new Error(`unknown heading ${heading}, valid values are: ${valid}`);
}

// ---- Public API ------------------------------------------------------------------------------

/** The default (`wide` false) or `-o wide` columns of a kind (Kind name, any case). */
export function columnsFor(kind: string, wide: boolean, ctx: GetContext = {}): GetColumn[] {
  const def = kindColumns(kind);
  return (wide ? def.wide(ctx) : def.ps(ctx)).map((h) => toColumn(def, h));
}

/** Every heading `custom-columns` accepts for a kind (includes e.g. NAMESPACE, ORCHESTRATOR). */
export function knownHeadings(kind: string): string[] {
  return Object.keys(kindColumns(kind).cells);
}

export interface RenderGetOptions {
  wide?: boolean;
  /** `-A`/`--all-namespaces` or an explicit `-n`: prepend NAMESPACE for namespaced kinds. */
  showNamespace?: boolean;
  ctx?: GetContext;
}

function table(columns: GetColumn[], resources: readonly GetResource[], ctx: GetContext): string {
  return renderTabTable(
    columns.map((c) => c.heading),
    resources.map((r) => columns.map((c) => c.cell(r, ctx))),
  );
}

/** One `calicoctl get` table (headings, rows, trailing blank line) for resources of one kind. */
export function renderGet(kind: string, resources: readonly GetResource[], opts: RenderGetOptions = {}): string {
  const ctx = opts.ctx ?? {};
  const def = kindColumns(kind);
  let columns = columnsFor(kind, opts.wide ?? false, ctx);
  if (opts.showNamespace && def.cells.NAMESPACE) columns = [toColumn(def, 'NAMESPACE'), ...columns];
  return table(columns, resources, ctx);
}

export interface CustomColumnsOptions {
  /** The kind, for the `(headings, resources, opts)` form; defaults to the first resource's kind. */
  kind?: string;
  ctx?: GetContext;
  /**
   * Accepted for symmetry with renderGet and ignored: calicoctl never prepends NAMESPACE to
   * custom columns (ask for it explicitly: `custom-columns=NAMESPACE,NAME`).
   */
  showNamespace?: boolean;
  /**
   * Match headings exactly as calicoctl does (`custom-columns=name` is then an error).
   * Default false: headings match case-insensitively and print in upper case.
   */
  exactCase?: boolean;
}

/**
 * `-o custom-columns=H1,H2`: the given headings (known columns of the kind) in that order,
 * with the usual trailing blank line. Throws `unknown heading X, valid values are: ...` for a
 * heading the kind does not have (checked even when there are no resources, as calicoctl does).
 *
 * Two call forms: `(kind, headings, resources, opts?)` or `(headings, resources, {kind?, ...})`.
 */
export function renderCustomColumns(
  kind: string,
  headings: readonly string[],
  resources: readonly GetResource[],
  opts?: CustomColumnsOptions,
): string;
export function renderCustomColumns(
  headings: readonly string[],
  resources: readonly GetResource[],
  opts?: CustomColumnsOptions,
): string;
export function renderCustomColumns(
  a: string | readonly string[],
  b: readonly string[] | readonly GetResource[],
  c?: readonly GetResource[] | CustomColumnsOptions,
  d?: CustomColumnsOptions,
): string {
  let kind: string | undefined;
  let headings: readonly string[];
  let resources: readonly GetResource[];
  let opts: CustomColumnsOptions;
  if (typeof a === 'string') {
    kind = a;
    headings = b as readonly string[];
    resources = (c as readonly GetResource[] | undefined) ?? [];
    opts = d ?? {};
  } else {
    headings = a;
    resources = b as readonly GetResource[];
    opts = (c as CustomColumnsOptions | undefined) ?? {};
    kind = opts.kind ?? resources[0]?.kind;
  }
  if (!kind) throw new Error('custom-columns: the resource kind is unknown');
  const def = kindColumns(kind);
  const columns = headings.map((h) => {
    const key = opts.exactCase ? h : Object.keys(def.cells).find((k) => k === h.toUpperCase());
    if (key === undefined) throw unknownHeading(def, h);
    return toColumn(def, key);
  });
  return table(columns, resources, opts.ctx ?? {});
}
