// WorkloadEndpoint and HostEndpoint.
//
// WorkloadEndpoint names are derived from the spec, as Calico's client does (reference §1.2):
// segments `<node>-<orchestrator>-<pod|containerID|workload>-<endpoint>` (k8s uses the pod,
// cni the containerID, libnetwork the word "libnetwork", others the workload) with every "-"
// inside a segment doubled. A missing metadata.name is filled in; a given one must match.
// As Calico does on create, the labels `projectcalico.org/namespace` and
// `projectcalico.org/orchestrator` are set from the namespace and spec.orchestrator.

import { parseCIDR, parseIP } from '../../../net/ip.js';
import {
  checkCIDR,
  checkInterfaceName,
  checkIP,
  checkMAC,
  checkProtocol,
  checkSubdomain,
  parseCIDRField,
  portNameProblem,
  protocolHasPorts,
} from './common.js';
import {
  type Ctx,
  type Obj,
  checkInt,
  checkKnown,
  join,
  put,
  readInt,
  readObj,
  readObjList,
  readString,
  readStringList,
} from './context.js';

const containerIDRe = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;

function optName(ctx: Ctx, o: Obj, key: string, path: string): string | undefined {
  const v = readString(ctx, o, key, path);
  return v === undefined || v === '' ? undefined : checkSubdomain(ctx, v, join(path, key));
}

function checkPortName(ctx: Ctx, v: string, p: string): string | undefined {
  const prob = portNameProblem(v);
  if (prob) {
    ctx.invalid(p, v, `is not a valid port name (${prob})`);
    return undefined;
  }
  return v;
}

/** An endpoint port `{name, protocol, port, ...}`; `forWorkload` adds hostPort/hostIP. */
function endpointPort(ctx: Ctx, o: Obj, p: string, forWorkload: boolean): Obj {
  checkKnown(ctx, o, p, forWorkload ? ['name', 'protocol', 'port', 'hostPort', 'hostIP'] : ['name', 'protocol', 'port'], 'an endpoint port');
  const out: Obj = {};
  const name = readString(ctx, o, 'name', p, { required: !forWorkload });
  if (name) put(out, 'name', checkPortName(ctx, name, join(p, 'name')));
  if (o.protocol === undefined || o.protocol === null || o.protocol === '') {
    ctx.missing(join(p, 'protocol'), 'TCP, UDP or SCTP');
  } else {
    const proto = checkProtocol(ctx, o.protocol, join(p, 'protocol'));
    if (proto !== undefined) {
      if (!protocolHasPorts(proto)) ctx.invalid(join(p, 'protocol'), o.protocol, 'does not have ports (use TCP, UDP or SCTP)');
      else out.protocol = proto;
    }
  }
  put(out, 'port', readInt(ctx, o, 'port', p, { required: true, min: 1, max: 65535, rangeHint: 'port numbers are 1–65535' }));
  if (forWorkload) {
    const hostPort = readInt(ctx, o, 'hostPort', p, { min: 0, max: 65535 });
    if (hostPort) out.hostPort = hostPort;
    const hostIP = readString(ctx, o, 'hostIP', p);
    if (hostIP) {
      const hp = join(p, 'hostIP');
      put(out, 'hostIP', hostIP.includes('/') ? checkCIDR(ctx, hostIP, hp, { strict: true }) : checkIP(ctx, hostIP, hp));
    }
    if (!name && !hostPort) ctx.missing(join(p, 'name'), 'a port needs a name unless it has a hostPort');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// WorkloadEndpoint

const WEP_FIELDS = [
  'orchestrator',
  'workload',
  'node',
  'containerID',
  'pod',
  'endpoint',
  'serviceAccountName',
  'ipNetworks',
  'ipNATs',
  'ipv4Gateway',
  'ipv6Gateway',
  'profiles',
  'interfaceName',
  'mac',
  'ports',
  'allowSpoofedSourcePrefixes',
  'qosControls',
];

const QOS_FIELDS = [
  'ingressBandwidth',
  'ingressBurst',
  'ingressPeakrate',
  'ingressMinburst',
  'egressBandwidth',
  'egressBurst',
  'egressPeakrate',
  'egressMinburst',
  'ingressPacketRate',
  'ingressPacketBurst',
  'egressPacketRate',
  'egressPacketBurst',
  'ingressMaxConnections',
  'egressMaxConnections',
];

export interface WorkloadEndpointIds {
  node?: string;
  orchestrator?: string;
  pod?: string;
  containerID?: string;
  workload?: string;
  endpoint?: string;
}

/**
 * The name Calico gives a WorkloadEndpoint, or an error naming the identifier that is missing or
 * starts/ends with "-". E.g. node `kind-worker`, k8s pod `nginx-abc`, endpoint `eth0` →
 * `kind--worker-k8s-nginx--abc-eth0`.
 */
export function workloadEndpointName(ids: WorkloadEndpointIds): { name: string } | { field: string; value: string | undefined; problem: string } {
  const orch = ids.orchestrator ?? '';
  const third: [string, string | undefined] =
    orch === 'k8s' ? ['pod', ids.pod] : orch === 'cni' ? ['containerID', ids.containerID] : orch === 'libnetwork' ? ['orchestrator', 'libnetwork'] : ['workload', ids.workload];
  const segs: Array<[string, string | undefined]> = [['node', ids.node], ['orchestrator', ids.orchestrator], third, ['endpoint', ids.endpoint]];
  const parts: string[] = [];
  for (const [field, value] of segs) {
    if (!value) return { field, value, problem: 'is required to name the endpoint' };
    if (value.startsWith('-')) return { field, value, problem: 'must not begin with "-"' };
    if (value.endsWith('-')) return { field, value, problem: 'must not end with "-"' };
    parts.push(value.replaceAll('-', '--'));
  }
  return { name: parts.join('-') };
}

export interface EndpointMeta {
  meta: Obj;
  name: string | undefined;
  namespace: string | undefined;
}

export function validateWorkloadEndpointSpec(ctx: Ctx, spec: Obj, m: EndpointMeta): Obj {
  checkKnown(ctx, spec, 'spec', WEP_FIELDS, 'WorkloadEndpoint spec');
  const out: Obj = {};
  for (const k of ['orchestrator', 'workload', 'node', 'pod', 'endpoint', 'serviceAccountName']) put(out, k, optName(ctx, spec, k, 'spec'));
  const cid = readString(ctx, spec, 'containerID', 'spec');
  if (cid) {
    if (containerIDRe.test(cid)) out.containerID = cid;
    else ctx.invalid('spec.containerID', cid, 'is not a valid container ID (letters, digits and "-"; must start and end with a letter or digit)');
  }

  // name from the identifiers
  const s = (k: string): string | undefined => (typeof spec[k] === 'string' ? (spec[k] as string) : undefined);
  const ids: WorkloadEndpointIds = {
    node: s('node'),
    orchestrator: s('orchestrator'),
    pod: s('pod'),
    containerID: s('containerID'),
    workload: s('workload'),
    endpoint: s('endpoint'),
  };
  const named = workloadEndpointName(ids);
  if ('problem' in named) {
    if (named.value) ctx.invalid(join('spec', named.field), named.value, named.problem);
    else ctx.missing(join('spec', named.field), 'needed to name the WorkloadEndpoint');
  } else if (m.name === undefined && m.meta.name === undefined) {
    m.meta.name = named.name;
    m.name = named.name;
    ctx.name = named.name;
    checkSubdomain(ctx, named.name, 'metadata.name');
  } else if (m.name !== undefined && m.name !== named.name) {
    ctx.invalid('metadata.name', m.name, `does not match the identifiers in spec: expected ${JSON.stringify(named.name)}`);
  }

  // addresses
  const nets = readStringList(ctx, spec, 'ipNetworks', 'spec', (s, p) => {
    const c = parseCIDRField(ctx, s, p, { strict: true, allowBareIP: true });
    if (!c) return undefined;
    if (c.prefix !== (c.version === 4 ? 32 : 128)) {
      ctx.invalid(p, s, `contains more than one address (a workload network must be /${c.version === 4 ? 32 : 128})`);
      return undefined;
    }
    return checkCIDR(ctx, s, p, { strict: true, allowBareIP: true });
  });
  put(out, 'ipNetworks', nets);
  for (const [k, v] of [
    ['ipv4Gateway', 4],
    ['ipv6Gateway', 6],
  ] as const) {
    const g = readString(ctx, spec, k, 'spec');
    if (g) put(out, k, checkIP(ctx, g, join('spec', k), v));
  }
  put(
    out,
    'ipNATs',
    readObjList(ctx, spec, 'ipNATs', 'spec', (o, p) => {
      checkKnown(ctx, o, p, ['internalIP', 'externalIP'], 'an ipNAT');
      const r: Obj = {};
      const i = readString(ctx, o, 'internalIP', p, { required: true });
      const e = readString(ctx, o, 'externalIP', p, { required: true });
      const ii = i ? checkIP(ctx, i, join(p, 'internalIP')) : undefined;
      const ee = e ? checkIP(ctx, e, join(p, 'externalIP')) : undefined;
      put(r, 'internalIP', ii);
      put(r, 'externalIP', ee);
      if (ii && ee && parseIP(ii)!.version !== parseIP(ee)!.version) {
        ctx.say(p, o, `internalIP ${ii} and externalIP ${ee} are of different IP versions`);
      }
      if (ii && nets && !nets.some((n) => {
        const c = parseCIDR(n)!;
        const a = parseIP(ii)!;
        return c.version === a.version && c.network === a.value;
      })) {
        ctx.invalid(join(p, 'internalIP'), ii, `is not one of the endpoint's ipNetworks (${nets.join(', ')})`);
      }
      return r;
    }),
  );

  put(out, 'profiles', readStringList(ctx, spec, 'profiles', 'spec', (s, p) => checkSubdomain(ctx, s, p)));
  const iface = readString(ctx, spec, 'interfaceName', 'spec', { required: true, hint: 'the host-side interface, e.g. cali0123456789a' });
  if (iface) put(out, 'interfaceName', checkInterfaceName(ctx, iface, 'spec.interfaceName', true));
  const mac = readString(ctx, spec, 'mac', 'spec');
  if (mac) put(out, 'mac', checkMAC(ctx, mac, 'spec.mac'));
  put(out, 'ports', readObjList(ctx, spec, 'ports', 'spec', (o, p) => endpointPort(ctx, o, p, true)));
  put(
    out,
    'allowSpoofedSourcePrefixes',
    readStringList(ctx, spec, 'allowSpoofedSourcePrefixes', 'spec', (s, p) => checkCIDR(ctx, s, p, { allowBareIP: true })),
  );
  const qos = readObj(ctx, spec, 'qosControls', 'spec');
  if (qos) {
    const qp = 'spec.qosControls';
    checkKnown(ctx, qos, qp, [...QOS_FIELDS, 'dscp'], 'qosControls');
    const q: Obj = {};
    for (const k of QOS_FIELDS) {
      const v = readInt(ctx, qos, k, qp, { min: 0 });
      if (v) q[k] = v;
    }
    if (qos.dscp !== undefined && qos.dscp !== null) {
      if (typeof qos.dscp === 'number') put(q, 'dscp', checkInt(ctx, qos.dscp, join(qp, 'dscp'), { min: 0, max: 63 }));
      else if (typeof qos.dscp === 'string' && /^(DF|EF|AF[1-4][1-3]|CS[0-7])$/.test(qos.dscp)) q.dscp = qos.dscp;
      else ctx.invalid(join(qp, 'dscp'), qos.dscp, 'is not a valid DSCP value (0–63 or a name such as EF, AF11, CS1)');
    }
    out.qosControls = q;
  }

  // Labels Calico sets on every stored WorkloadEndpoint.
  const labels: Record<string, string> = { ...((m.meta.labels as Record<string, string> | undefined) ?? {}) };
  if (m.namespace) labels['projectcalico.org/namespace'] = m.namespace;
  if (typeof out.orchestrator === 'string') labels['projectcalico.org/orchestrator'] = out.orchestrator;
  if (Object.keys(labels).length > 0) m.meta.labels = labels;
  return out;
}

// ---------------------------------------------------------------------------------------------
// HostEndpoint

/**
 * HostEndpoints are refused (stored ones stay readable and deletable): Tortie enforces no policy on
 * host interfaces, so one would protect nothing. The spec is still checked, so that every problem
 * is named at once.
 */
export function validateHostEndpointSpec(ctx: Ctx, spec: Obj): Obj {
  ctx.invalid(
    'kind',
    'HostEndpoint',
    'is not supported: host endpoint policy is not enforced by Tortie (it polices pods only), so a HostEndpoint would protect nothing',
  );
  checkKnown(ctx, spec, 'spec', ['node', 'interfaceName', 'expectedIPs', 'profiles', 'ports'], 'HostEndpoint spec');
  const out: Obj = {};
  const node = readString(ctx, spec, 'node', 'spec', { required: true });
  if (node) put(out, 'node', checkSubdomain(ctx, node, 'spec.node'));
  const iface = readString(ctx, spec, 'interfaceName', 'spec');
  if (iface) put(out, 'interfaceName', checkInterfaceName(ctx, iface, 'spec.interfaceName', true));
  const ips = readStringList(ctx, spec, 'expectedIPs', 'spec', (s, p) => checkIP(ctx, s, p));
  if (ips && ips.length > 0) out.expectedIPs = ips;
  if (!iface && !(Array.isArray(spec.expectedIPs) && spec.expectedIPs.length > 0)) {
    ctx.missing('spec.interfaceName', 'a HostEndpoint needs interfaceName or expectedIPs');
  }
  put(out, 'profiles', readStringList(ctx, spec, 'profiles', 'spec', (s, p) => checkSubdomain(ctx, s, p)));
  put(out, 'ports', readObjList(ctx, spec, 'ports', 'spec', (o, p) => endpointPort(ctx, o, p, false)));
  return out;
}
