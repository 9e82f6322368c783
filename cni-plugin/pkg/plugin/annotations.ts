// Calico's IPAM annotations on a pod (and its namespace), read by the CNI ADD on the Kubernetes
// datastore. Pure: the caller fetches the annotations.
//   cni.projectcalico.org/ipv4pools, ipv6pools   JSON list of pool names or CIDRs to allocate from
//                                                (the pod's win over its namespace's; both over the
//                                                network configuration's ipam.ipv4_pools)
//   cni.projectcalico.org/ipAddrs                JSON list of addresses to allocate from IPAM exactly
//   cni.projectcalico.org/ipAddrsNoIpam          JSON list of addresses given without IPAM; only with
//                                                feature_control.ip_addrs_no_ipam: true
// A value that is not a JSON list of the right strings is refused, naming the annotation and value.
import { formatIP, parseCIDR, parseIP } from '../../../libcalico-go/lib/net/ip.js';
import { CniError, ErrCode } from '../skel/errors.js';

export const ANN_IPV4_POOLS = 'cni.projectcalico.org/ipv4pools';
export const ANN_IPV6_POOLS = 'cni.projectcalico.org/ipv6pools';
export const ANN_IP_ADDRS = 'cni.projectcalico.org/ipAddrs';
export const ANN_IP_ADDRS_NO_IPAM = 'cni.projectcalico.org/ipAddrsNoIpam';

export interface IpamAnnotations {
  /** Pools to allocate IPv4 from (names or CIDRs); undefined = the configuration's. */
  ipv4Pools?: string[];
  ipv6Pools?: string[];
  /** Exact addresses from IPAM (canonical text). */
  ipAddrs?: string[];
  /** Exact addresses outside IPAM (canonical text). */
  ipAddrsNoIpam?: string[];
  /** Where the pool lists came from, for the log. */
  poolsFrom?: 'pod' | 'namespace';
}

function bad(where: string, name: string, value: string, problem: string): CniError {
  return new CniError(ErrCode.UnsupportedField, `${where} annotation ${name}=${JSON.stringify(value)} ${problem}`);
}

function stringList(where: string, name: string, value: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    throw bad(where, name, value, 'is not JSON (want a list such as ["10.65.0.0/16"])');
  }
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) throw bad(where, name, value, 'must be a JSON list of non-empty strings');
  return v as string[];
}

function pools(where: string, name: string, value: string, version: 4 | 6): string[] {
  const list = stringList(where, name, value);
  for (const p of list) {
    if (!p.includes('/')) continue;
    const c = parseCIDR(p);
    if (!c) throw bad(where, name, value, `holds ${JSON.stringify(p)}, which is not a valid CIDR`);
    if (c.version !== version) throw bad(where, name, value, `holds ${JSON.stringify(p)}, which is not an IPv${version} CIDR`);
  }
  return list;
}

function addresses(where: string, name: string, value: string): string[] {
  const list = stringList(where, name, value);
  if (list.length === 0) throw bad(where, name, value, 'lists no address');
  return list.map((a) => {
    const ip = parseIP(a);
    if (!ip) throw bad(where, name, value, `holds ${JSON.stringify(a)}, which is not an IP address`);
    return formatIP(ip);
  });
}

/**
 * The IPAM request a pod's annotations make. `noIpamAllowed`: the network configuration's
 * feature_control.ip_addrs_no_ipam.
 */
export function ipamAnnotations(pod: Readonly<Record<string, string>>, namespace: Readonly<Record<string, string>>, noIpamAllowed: boolean): IpamAnnotations {
  const out: IpamAnnotations = {};
  const ipAddrs = pod[ANN_IP_ADDRS];
  const noIpam = pod[ANN_IP_ADDRS_NO_IPAM];
  if (ipAddrs !== undefined && noIpam !== undefined) {
    throw new CniError(ErrCode.UnsupportedField, `pod annotations ${ANN_IP_ADDRS} and ${ANN_IP_ADDRS_NO_IPAM} cannot both be set`);
  }
  if (noIpam !== undefined) {
    if (!noIpamAllowed) {
      throw bad('pod', ANN_IP_ADDRS_NO_IPAM, noIpam, 'needs feature_control.ip_addrs_no_ipam: true in the network configuration');
    }
    out.ipAddrsNoIpam = addresses('pod', ANN_IP_ADDRS_NO_IPAM, noIpam);
  }
  if (ipAddrs !== undefined) out.ipAddrs = addresses('pod', ANN_IP_ADDRS, ipAddrs);
  const fromPod = pod[ANN_IPV4_POOLS] !== undefined || pod[ANN_IPV6_POOLS] !== undefined;
  const src = fromPod ? pod : namespace;
  const where = fromPod ? 'pod' : 'namespace';
  const v4 = src[ANN_IPV4_POOLS];
  const v6 = src[ANN_IPV6_POOLS];
  if (v4 !== undefined) out.ipv4Pools = pools(where, ANN_IPV4_POOLS, v4, 4);
  if (v6 !== undefined) out.ipv6Pools = pools(where, ANN_IPV6_POOLS, v6, 6);
  if (v4 !== undefined || v6 !== undefined) out.poolsFrom = fromPod ? 'pod' : 'namespace';
  return out;
}
