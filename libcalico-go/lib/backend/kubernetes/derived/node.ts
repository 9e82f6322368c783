// Calico Node ↔ Kubernetes Node (reference calico-k8s.md §3, calico.md §4.6). Pure: no I/O.
//
// Read: name, resourceVersion, uid and creationTimestamp are the k8s Node's; labels are the k8s labels
// plus the Calico labels kept as JSON in the annotation `projectcalico.org/labels` (a Calico label
// shadowed by a k8s one is dropped); Calico annotations come from `projectcalico.org/annotations`,
// plus the synthetic `projectcalico.org/kube-labels` (JSON of the k8s labels) that the write side
// uses to tell k8s labels from Calico ones. BGP, VXLAN and WireGuard fields come from
// `projectcalico.org/<Field>` annotations, each validated (an invalid value is ignored); orchRefs name
// the k8s Node; addresses are the BGP addresses then the k8s InternalIP/ExternalIP addresses;
// status.podCIDRs is the k8s spec.podCIDRs.
//
// Write: only annotations change (nodes/status is PUT with them); an empty field deletes its
// annotation and an absent spec.bgp deletes every BGP one.
//
// Tortie's own Node status (`status.tortie`: config drift, unsupported settings), which the etcd
// layout stores in the Node as given, has no place in a k8s Node: it is kept as JSON in the
// annotation `tortie.dev/status` (Calico's readers ignore it, as they ignore the field in etcd).
import { API_VERSION } from '../../../apis/v3/kinds.js';
import type { Resource } from '../../../apis/v3/resource.js';
import { parseCIDR, parseIP, type IPVersion } from '../../../net/ip.js';
import { parseStringMap, stringMapJSON } from './json-maps.js';
import type { K8sNode } from './k8s-objects.js';

const P = 'projectcalico.org/';
export const ANN_LABELS = `${P}labels`;
export const ANN_ANNOTATIONS = `${P}annotations`;
export const ANN_KUBE_LABELS = `${P}kube-labels`;
export const ANN_IPV4_ADDRESS = `${P}IPv4Address`;
export const ANN_IPV6_ADDRESS = `${P}IPv6Address`;
export const ANN_IPV4_IPIP_TUNNEL_ADDR = `${P}IPv4IPIPTunnelAddr`;
export const ANN_AS_NUMBER = `${P}ASNumber`;
export const ANN_RR_CLUSTER_ID = `${P}RouteReflectorClusterID`;
export const ANN_IPV4_VXLAN_TUNNEL_ADDR = `${P}IPv4VXLANTunnelAddr`;
export const ANN_IPV6_VXLAN_TUNNEL_ADDR = `${P}IPv6VXLANTunnelAddr`;
export const ANN_VXLAN_TUNNEL_MAC = `${P}VXLANTunnelMACAddr`;
export const ANN_VXLAN_TUNNEL_MAC_V6 = `${P}VXLANTunnelMACAddrV6`;
export const ANN_IPV4_WIREGUARD_ADDR = `${P}IPv4WireguardInterfaceAddr`;
export const ANN_IPV6_WIREGUARD_ADDR = `${P}IPv6WireguardInterfaceAddr`;
export const ANN_WIREGUARD_KEY = `${P}WireguardPublicKey`;
export const ANN_WIREGUARD_KEY_V6 = `${P}WireguardPublicKeyV6`;
/** Tortie's `status.tortie` of a Node (not Calico's). */
export const ANN_TORTIE_STATUS = 'tortie.dev/status';

/** The annotations that hold spec.bgp (all deleted when spec.bgp is absent). */
export const BGP_ANNOTATIONS = [ANN_IPV4_ADDRESS, ANN_IPV6_ADDRESS, ANN_IPV4_IPIP_TUNNEL_ADDR, ANN_AS_NUMBER, ANN_RR_CLUSTER_ID] as const;

type Obj = Record<string, unknown>;

function ipOf(v: string, version: IPVersion): string | undefined {
  const ip = parseIP(v);
  return ip && ip.version === version ? v : undefined;
}

/** An interface address `addr/len` (host bits kept) of the given family; a bare address is not one. */
function addrWithPrefix(v: string, version: IPVersion): string | undefined {
  const c = parseCIDR(v);
  const ip = parseIP(v.slice(0, v.indexOf('/')));
  return c && ip && c.version === version ? v : undefined;
}

/** An AS number: plain (0–4294967295) or dotted `high.low` (each 0–65535). */
export function parseASNumber(v: string): number | undefined {
  if (/^\d{1,10}$/.test(v)) {
    const n = Number(v);
    return n <= 0xffffffff ? n : undefined;
  }
  const m = /^(\d{1,5})\.(\d{1,5})$/.exec(v);
  if (!m) return undefined;
  const hi = Number(m[1]);
  const lo = Number(m[2]);
  return hi <= 0xffff && lo <= 0xffff ? hi * 0x10000 + lo : undefined;
}

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const macOf = (v: string) => (MAC.test(v) ? v : undefined);
/** WireGuard public keys are taken as they are (Calico does not check them on read). */
const keyOf = (v: string) => v;

/** The v3 Node of a Kubernetes Node. */
export function nodeFromK8s(k8s: K8sNode): Resource {
  const meta = k8s.metadata ?? {};
  const name = meta.name ?? '';
  const ann = meta.annotations ?? {};
  const get = (key: string, check: (v: string) => string | undefined): string | undefined => {
    const v = ann[key];
    return v === undefined || v === '' ? undefined : check(v);
  };

  const kubeLabels = meta.labels ?? {};
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(parseStringMap(ann[ANN_LABELS]) ?? {})) if (!(k in kubeLabels)) labels[k] = v;
  Object.assign(labels, kubeLabels);
  const annotations: Record<string, string> = { ...(parseStringMap(ann[ANN_ANNOTATIONS]) ?? {}) };
  // Go's JSON of an absent label map is "null".
  annotations[ANN_KUBE_LABELS] = meta.labels === undefined ? 'null' : stringMapJSON(kubeLabels);

  const spec: Obj = {};
  const bgp: Obj = {};
  const v4 = get(ANN_IPV4_ADDRESS, (v) => addrWithPrefix(v, 4));
  const v6 = get(ANN_IPV6_ADDRESS, (v) => addrWithPrefix(v, 6));
  if (v4) bgp.ipv4Address = v4;
  if (v6) bgp.ipv6Address = v6;
  const ipip = get(ANN_IPV4_IPIP_TUNNEL_ADDR, (v) => ipOf(v, 4));
  if (ipip) bgp.ipv4IPIPTunnelAddr = ipip;
  const asn = ann[ANN_AS_NUMBER] === undefined ? undefined : parseASNumber(ann[ANN_AS_NUMBER]!);
  if (asn !== undefined) bgp.asNumber = asn;
  const rr = get(ANN_RR_CLUSTER_ID, (v) => ipOf(v, 4));
  if (rr) bgp.routeReflectorClusterID = rr;
  if (Object.keys(bgp).length > 0) spec.bgp = bgp;

  const fields: [string, string, (v: string) => string | undefined][] = [
    ['ipv4VXLANTunnelAddr', ANN_IPV4_VXLAN_TUNNEL_ADDR, (v) => ipOf(v, 4)],
    ['vxlanTunnelMACAddr', ANN_VXLAN_TUNNEL_MAC, macOf],
    ['ipv6VXLANTunnelAddr', ANN_IPV6_VXLAN_TUNNEL_ADDR, (v) => ipOf(v, 6)],
    ['vxlanTunnelMACAddrV6', ANN_VXLAN_TUNNEL_MAC_V6, macOf],
  ];
  for (const [field, key, check] of fields) {
    const v = get(key, check);
    if (v) spec[field] = v;
  }
  const wg: Obj = {};
  const wg4 = get(ANN_IPV4_WIREGUARD_ADDR, (v) => ipOf(v, 4));
  const wg6 = get(ANN_IPV6_WIREGUARD_ADDR, (v) => ipOf(v, 6));
  if (wg4) wg.interfaceIPv4Address = wg4;
  if (wg6) wg.interfaceIPv6Address = wg6;
  if (Object.keys(wg).length > 0) spec.wireguard = wg;

  spec.orchRefs = [{ nodeName: name, orchestrator: 'k8s' }];
  const addresses: { address: string; type: string }[] = [];
  if (v4) addresses.push({ address: v4, type: 'CalicoNodeIP' });
  if (v6) addresses.push({ address: v6, type: 'CalicoNodeIP' });
  for (const a of k8s.status?.addresses ?? []) {
    if ((a.type === 'InternalIP' || a.type === 'ExternalIP') && a.address) addresses.push({ address: a.address, type: a.type });
  }
  if (addresses.length > 0) spec.addresses = addresses;

  const status: Obj = {};
  const key4 = get(ANN_WIREGUARD_KEY, keyOf);
  const key6 = get(ANN_WIREGUARD_KEY_V6, keyOf);
  if (key4) status.wireguardPublicKey = key4;
  if (key6) status.wireguardPublicKeyV6 = key6;
  const podCIDRs = k8s.spec?.podCIDRs ?? (k8s.spec?.podCIDR ? [k8s.spec.podCIDR] : []);
  if (podCIDRs.length > 0) status.podCIDRs = [...podCIDRs];
  const tortie = parseObject(ann[ANN_TORTIE_STATUS]);
  if (tortie) status.tortie = tortie;

  const outMeta: Resource['metadata'] = { name };
  if (meta.uid) outMeta.uid = meta.uid;
  if (meta.creationTimestamp) outMeta.creationTimestamp = meta.creationTimestamp;
  if (meta.resourceVersion) outMeta.resourceVersion = meta.resourceVersion;
  if (Object.keys(labels).length > 0) outMeta.labels = labels;
  outMeta.annotations = annotations;
  const out: Resource = { apiVersion: API_VERSION, kind: 'Node', metadata: outMeta, spec };
  if (Object.keys(status).length > 0) out.status = status;
  return out;
}

function parseObject(text: string | undefined): Obj | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
  } catch {
    return undefined;
  }
}

function str(o: unknown, key: string): string {
  if (typeof o !== 'object' || o === null) return '';
  const v = (o as Obj)[key];
  if (typeof v === 'number') return String(v);
  return typeof v === 'string' ? v : '';
}

/**
 * The annotations a v3 Node puts on the k8s Node: a map of annotation → value, with `null` for an
 * annotation to delete. `current` is the k8s Node as read now (its labels tell k8s labels apart when
 * the v3 Node carries no `projectcalico.org/kube-labels`).
 */
export function nodeAnnotationChanges(node: Resource, current: K8sNode): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  const set = (key: string, v: string) => {
    out[key] = v === '' ? null : v;
  };
  const spec = (node.spec ?? {}) as Obj;
  const bgp = spec.bgp;
  if (typeof bgp !== 'object' || bgp === null) {
    for (const k of BGP_ANNOTATIONS) out[k] = null;
  } else {
    set(ANN_IPV4_ADDRESS, str(bgp, 'ipv4Address'));
    set(ANN_IPV6_ADDRESS, str(bgp, 'ipv6Address'));
    set(ANN_IPV4_IPIP_TUNNEL_ADDR, str(bgp, 'ipv4IPIPTunnelAddr'));
    set(ANN_AS_NUMBER, str(bgp, 'asNumber'));
    set(ANN_RR_CLUSTER_ID, str(bgp, 'routeReflectorClusterID'));
  }
  set(ANN_IPV4_VXLAN_TUNNEL_ADDR, str(spec, 'ipv4VXLANTunnelAddr'));
  set(ANN_VXLAN_TUNNEL_MAC, str(spec, 'vxlanTunnelMACAddr'));
  set(ANN_IPV6_VXLAN_TUNNEL_ADDR, str(spec, 'ipv6VXLANTunnelAddr'));
  set(ANN_VXLAN_TUNNEL_MAC_V6, str(spec, 'vxlanTunnelMACAddrV6'));
  set(ANN_IPV4_WIREGUARD_ADDR, str(spec.wireguard, 'interfaceIPv4Address'));
  set(ANN_IPV6_WIREGUARD_ADDR, str(spec.wireguard, 'interfaceIPv6Address'));
  set(ANN_WIREGUARD_KEY, str(node.status, 'wireguardPublicKey'));
  set(ANN_WIREGUARD_KEY_V6, str(node.status, 'wireguardPublicKeyV6'));
  const tortie = (node.status as Obj | undefined)?.tortie;
  out[ANN_TORTIE_STATUS] = typeof tortie === 'object' && tortie !== null && Object.keys(tortie).length > 0 ? JSON.stringify(tortie) : null;

  const v3Annotations = { ...(node.metadata.annotations ?? {}) };
  const kubeLabels = parseStringMap(v3Annotations[ANN_KUBE_LABELS]) ?? current.metadata?.labels ?? {};
  delete v3Annotations[ANN_KUBE_LABELS];
  const calicoLabels: Record<string, string> = {};
  for (const [k, v] of Object.entries(node.metadata.labels ?? {})) if (!(k in kubeLabels)) calicoLabels[k] = v;
  out[ANN_LABELS] = Object.keys(calicoLabels).length > 0 ? stringMapJSON(calicoLabels) : null;
  out[ANN_ANNOTATIONS] = Object.keys(v3Annotations).length > 0 ? stringMapJSON(v3Annotations) : null;
  return out;
}

/**
 * The k8s Node to PUT to `nodes/<name>/status` for a v3 Node: `current` (as read now, its
 * resourceVersion the precondition) with the annotations of `nodeAnnotationChanges` applied.
 */
export function k8sNodeForUpdate(node: Resource, current: K8sNode): K8sNode {
  const next = structuredClone(current);
  const meta = (next.metadata ??= {});
  const ann = { ...(meta.annotations ?? {}) };
  for (const [k, v] of Object.entries(nodeAnnotationChanges(node, current))) {
    if (v === null) delete ann[k];
    else ann[k] = v;
  }
  meta.annotations = ann;
  return next;
}
