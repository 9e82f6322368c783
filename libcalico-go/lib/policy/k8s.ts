// Kubernetes networking.k8s.io/v1 NetworkPolicy → Calico v3 NetworkPolicy, with Calico's
// translation: name `knp.default.<name>`, tier default, order 1000, selectors restricted to
// Kubernetes endpoints, one Calico rule per (peer × protocol) of each Kubernetes rule.
import type { Resource } from '../apis/v3/resource.js';
import { parseCIDR, cidrContainsIP } from '../net/ip.js';

export const K8S_NP_API_VERSION = 'networking.k8s.io/v1';
export const KNP_PREFIX = 'knp.default.';
export const KNP_ORDER = 1000;
const ORCH = "projectcalico.org/orchestrator == 'k8s'";

export class K8sPolicyError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'K8sPolicyError';
  }
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown, path: string, optional = true): Obj | undefined {
  if (v === undefined || v === null) {
    if (optional) return undefined;
    throw new K8sPolicyError(path, 'is required');
  }
  if (!isObj(v)) throw new K8sPolicyError(path, `must be an object, got ${JSON.stringify(v)}`);
  return v;
}

function list(v: unknown, path: string): unknown[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new K8sPolicyError(path, `must be a list, got ${JSON.stringify(v)}`);
  return v;
}

function known(o: Obj, path: string, fields: string[]): void {
  for (const k of Object.keys(o)) if (!fields.includes(k)) throw new K8sPolicyError(`${path}.${k}`, 'unknown field');
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

function quote(v: string, path: string): string {
  if (!LABEL_VALUE.test(v)) throw new K8sPolicyError(path, `${JSON.stringify(v)} is not a valid label value`);
  return `'${v}'`;
}

/** A Kubernetes LabelSelector as a Calico selector; "" when it selects everything. */
export function convertLabelSelector(v: unknown, path: string): string {
  const s = obj(v, path) ?? {};
  known(s, path, ['matchLabels', 'matchExpressions']);
  const terms: string[] = [];
  const ml = obj(s.matchLabels, `${path}.matchLabels`) ?? {};
  for (const k of Object.keys(ml).sort()) {
    if (!LABEL_KEY.test(k)) throw new K8sPolicyError(`${path}.matchLabels`, `${JSON.stringify(k)} is not a valid label key`);
    const val = ml[k];
    if (typeof val !== 'string') throw new K8sPolicyError(`${path}.matchLabels.${k}`, `must be a string, got ${JSON.stringify(val)}`);
    terms.push(`${k} == ${quote(val, `${path}.matchLabels.${k}`)}`);
  }
  (list(s.matchExpressions, `${path}.matchExpressions`) ?? []).forEach((e, i) => {
    const p = `${path}.matchExpressions[${i}]`;
    const x = obj(e, p, false)!;
    known(x, p, ['key', 'operator', 'values']);
    if (typeof x.key !== 'string' || !LABEL_KEY.test(x.key)) throw new K8sPolicyError(`${p}.key`, `${JSON.stringify(x.key)} is not a valid label key`);
    const values = list(x.values, `${p}.values`) ?? [];
    values.forEach((vv, j) => {
      if (typeof vv !== 'string') throw new K8sPolicyError(`${p}.values[${j}]`, `must be a string, got ${JSON.stringify(vv)}`);
    });
    const vals = (values as string[]).map((vv, j) => quote(vv, `${p}.values[${j}]`));
    switch (x.operator) {
      case 'In':
      case 'NotIn':
        if (vals.length === 0) throw new K8sPolicyError(`${p}.values`, `must be non-empty for operator ${x.operator}`);
        terms.push(`${x.key} ${x.operator === 'In' ? 'in' : 'not in'} { ${vals.join(', ')} }`);
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (vals.length > 0) throw new K8sPolicyError(`${p}.values`, `must be empty for operator ${x.operator}`);
        terms.push(x.operator === 'Exists' ? `has(${x.key})` : `! has(${x.key})`);
        break;
      default:
        throw new K8sPolicyError(`${p}.operator`, `${JSON.stringify(x.operator)} is not one of In, NotIn, Exists, DoesNotExist`);
    }
  });
  return terms.join(' && ');
}

function withOrch(s: string): string {
  return s === '' ? ORCH : `${ORCH} && ${s}`;
}

interface PortGroup {
  protocol: string;
  ports: Array<number | string>;
}

function convertPorts(v: unknown, path: string): PortGroup[] | undefined {
  const ports = list(v, path);
  if (!ports || ports.length === 0) return undefined;
  const groups = new Map<string, PortGroup>();
  const order: string[] = [];
  ports.forEach((pp, i) => {
    const p = `${path}[${i}]`;
    const o = obj(pp, p, false)!;
    known(o, p, ['protocol', 'port', 'endPort']);
    const proto = o.protocol === undefined || o.protocol === null ? 'TCP' : o.protocol;
    if (proto !== 'TCP' && proto !== 'UDP' && proto !== 'SCTP') {
      throw new K8sPolicyError(`${p}.protocol`, `${JSON.stringify(proto)} is not one of TCP, UDP, SCTP`);
    }
    if (!groups.has(proto)) {
      groups.set(proto, { protocol: proto, ports: [] });
      order.push(proto);
    }
    const g = groups.get(proto)!;
    const port = o.port;
    const end = o.endPort;
    if (port === undefined || port === null) {
      if (end !== undefined && end !== null) throw new K8sPolicyError(`${p}.endPort`, 'needs a numeric port as well');
      g.ports.push('*');
      return;
    }
    if (typeof port === 'number') {
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new K8sPolicyError(`${p}.port`, `${port} is not a port number 1–65535`);
      if (end === undefined || end === null) {
        g.ports.push(port);
        return;
      }
      if (typeof end !== 'number' || !Number.isInteger(end) || end < 1 || end > 65535) {
        throw new K8sPolicyError(`${p}.endPort`, `${JSON.stringify(end)} is not a port number 1–65535`);
      }
      if (end < port) throw new K8sPolicyError(`${p}.endPort`, `${end} is less than port ${port}`);
      g.ports.push(end === port ? port : `${port}:${end}`);
      return;
    }
    if (typeof port === 'string') {
      if (end !== undefined && end !== null) throw new K8sPolicyError(`${p}.endPort`, `is not allowed with the named port ${JSON.stringify(port)}`);
      if (/^\d+$/.test(port)) throw new K8sPolicyError(`${p}.port`, `${JSON.stringify(port)} is a number written as a string`);
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(port) || port.length > 15 || !/[a-z]/.test(port)) {
        throw new K8sPolicyError(`${p}.port`, `${JSON.stringify(port)} is not a valid port name`);
      }
      g.ports.push(port);
      return;
    }
    throw new K8sPolicyError(`${p}.port`, `must be a number or a port name, got ${JSON.stringify(port)}`);
  });
  // A port entry without a port number means "every port of that protocol".
  return order.map((k) => {
    const g = groups.get(k)!;
    return g.ports.includes('*') ? { protocol: g.protocol, ports: [] } : g;
  });
}

function convertPeer(v: unknown, path: string): Obj {
  const o = obj(v, path, false)!;
  known(o, path, ['podSelector', 'namespaceSelector', 'ipBlock']);
  const hasPod = o.podSelector !== undefined && o.podSelector !== null;
  const hasNs = o.namespaceSelector !== undefined && o.namespaceSelector !== null;
  const hasIp = o.ipBlock !== undefined && o.ipBlock !== null;
  if (hasIp && (hasPod || hasNs)) throw new K8sPolicyError(`${path}.ipBlock`, 'cannot be combined with podSelector or namespaceSelector');
  if (!hasIp && !hasPod && !hasNs) throw new K8sPolicyError(path, 'must have podSelector, namespaceSelector or ipBlock');
  if (hasIp) {
    const ib = obj(o.ipBlock, `${path}.ipBlock`, false)!;
    known(ib, `${path}.ipBlock`, ['cidr', 'except']);
    const c = typeof ib.cidr === 'string' ? parseCIDR(ib.cidr) : null;
    if (!c) throw new K8sPolicyError(`${path}.ipBlock.cidr`, `${JSON.stringify(ib.cidr)} is not a CIDR`);
    const out: Obj = { nets: [ib.cidr] };
    const ex = list(ib.except, `${path}.ipBlock.except`);
    if (ex && ex.length > 0) {
      out.notNets = ex.map((e, i) => {
        const ec = typeof e === 'string' ? parseCIDR(e) : null;
        if (!ec) throw new K8sPolicyError(`${path}.ipBlock.except[${i}]`, `${JSON.stringify(e)} is not a CIDR`);
        if (ec.version !== c.version || ec.prefix < c.prefix || !cidrContainsIP(c, { version: ec.version, value: ec.network })) {
          throw new K8sPolicyError(`${path}.ipBlock.except[${i}]`, `${e} is not inside ${ib.cidr}`);
        }
        return e;
      });
    }
    return out;
  }
  const out: Obj = {};
  const pod = hasPod ? convertLabelSelector(o.podSelector, `${path}.podSelector`) : '';
  out.selector = withOrch(pod);
  if (hasNs) {
    const ns = convertLabelSelector(o.namespaceSelector, `${path}.namespaceSelector`);
    out.namespaceSelector = ns === '' ? 'all()' : ns;
  }
  return out;
}

function convertRules(v: unknown, path: string, dir: 'ingress' | 'egress'): Obj[] {
  const rules = list(v, path) ?? [];
  const out: Obj[] = [];
  rules.forEach((r, i) => {
    const p = `${path}[${i}]`;
    const o = obj(r, p, false)!;
    const peerKey = dir === 'ingress' ? 'from' : 'to';
    known(o, p, [peerKey, 'ports']);
    const peers = (list(o[peerKey], `${p}.${peerKey}`) ?? []).map((x, j) => convertPeer(x, `${p}.${peerKey}[${j}]`));
    const groups = convertPorts(o.ports, `${p}.ports`);
    const peerList: Array<Obj | undefined> = peers.length > 0 ? peers : [undefined];
    for (const peer of peerList) {
      const protos: Array<PortGroup | undefined> = groups ?? [undefined];
      for (const g of protos) {
        const rule: Obj = { action: 'Allow' };
        if (g) rule.protocol = g.protocol;
        const dst: Obj = {};
        const peerSide: Obj = { ...(peer ?? {}) };
        if (g && g.ports.length > 0) dst.ports = g.ports;
        if (dir === 'ingress') {
          if (Object.keys(peerSide).length > 0) rule.source = peerSide;
          if (Object.keys(dst).length > 0) rule.destination = dst;
        } else {
          const d = { ...peerSide, ...dst };
          if (Object.keys(d).length > 0) rule.destination = d;
        }
        out.push(rule);
      }
    }
  });
  return out;
}

/** True for a document that is a Kubernetes NetworkPolicy. */
export function isK8sNetworkPolicy(doc: unknown): boolean {
  return isObj(doc) && doc.apiVersion === K8S_NP_API_VERSION && doc.kind === 'NetworkPolicy';
}

/**
 * Converts a networking.k8s.io/v1 NetworkPolicy into the projectcalico.org/v3 NetworkPolicy Calico
 * enforces for it. Throws K8sPolicyError naming the field for malformed input.
 */
export function convertK8sNetworkPolicy(np: unknown, defaultNamespace = 'default'): Resource {
  if (!isObj(np)) throw new K8sPolicyError('NetworkPolicy', `must be an object, got ${JSON.stringify(np)}`);
  if (np.apiVersion !== K8S_NP_API_VERSION) throw new K8sPolicyError('apiVersion', `${JSON.stringify(np.apiVersion)} is not ${K8S_NP_API_VERSION}`);
  if (np.kind !== 'NetworkPolicy') throw new K8sPolicyError('kind', `${JSON.stringify(np.kind)} is not NetworkPolicy`);
  const meta = obj(np.metadata, 'metadata', false)!;
  const name = meta.name;
  if (typeof name !== 'string' || name === '') throw new K8sPolicyError('metadata.name', 'is required');
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name) || name.length > 253 - KNP_PREFIX.length) {
    throw new K8sPolicyError('metadata.name', `${JSON.stringify(name)} is not a valid name`);
  }
  const namespace = meta.namespace ?? defaultNamespace;
  if (typeof namespace !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace)) {
    throw new K8sPolicyError('metadata.namespace', `${JSON.stringify(namespace)} is not a valid namespace`);
  }
  const spec = obj(np.spec, 'spec', false)!;
  known(spec, 'spec', ['podSelector', 'ingress', 'egress', 'policyTypes']);
  if (spec.podSelector === undefined || spec.podSelector === null) throw new K8sPolicyError('spec.podSelector', 'is required (use {} for every pod)');
  const selector = withOrch(convertLabelSelector(spec.podSelector, 'spec.podSelector'));
  const ingress = convertRules(spec.ingress, 'spec.ingress', 'ingress');
  const egress = convertRules(spec.egress, 'spec.egress', 'egress');
  let types: string[];
  const pt = list(spec.policyTypes, 'spec.policyTypes');
  if (pt && pt.length > 0) {
    pt.forEach((t, i) => {
      if (t !== 'Ingress' && t !== 'Egress') throw new K8sPolicyError(`spec.policyTypes[${i}]`, `${JSON.stringify(t)} is not Ingress or Egress`);
    });
    types = ['Ingress', 'Egress'].filter((t) => (pt as string[]).includes(t));
  } else {
    // Kubernetes' default: Ingress always, Egress when egress rules are present.
    types = Array.isArray(spec.egress) && spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
  }
  const outSpec: Obj = { tier: 'default', order: KNP_ORDER, selector, types };
  if (types.includes('Ingress') && ingress.length > 0) outSpec.ingress = ingress;
  if (types.includes('Egress') && egress.length > 0) outSpec.egress = egress;
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'NetworkPolicy',
    metadata: { name: KNP_PREFIX + name, namespace },
    spec: outSpec,
  };
}
