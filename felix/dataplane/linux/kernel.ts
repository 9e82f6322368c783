// Kernel settings the dataplane needs in the node's network namespace, as Felix's
// configureKernel applies them at start (IPForwarding=Enabled): forward between the underlay and
// the pods' veths.
//
// IPv6 follows FELIX_IPV6SUPPORT (Felix's Ipv6Support, default true). With it off the agent writes
// no IPv6 sysctl at all — not net.ipv6.conf.all.forwarding here, and none of the per-pod ones
// (pods that would get an IPv6 address are refused before wiring, see ipv4OnlyPodDataplane). It
// does not switch IPv6 forwarding off either: a value set by someone else is left as it is.
import { writeSysctl } from './iproute.js';
import { PodNetError } from './podnet.js';

export interface KernelOptions {
  /** Ipv6Support: also forward IPv6. */
  ipv6?: boolean;
}

/** The sysctls configureKernel writes, in order (pure). */
export function kernelSettings(opts: KernelOptions = {}): Array<[string, number]> {
  const out: Array<[string, number]> = [['net.ipv4.ip_forward', 1]];
  if (opts.ipv6) out.push(['net.ipv6.conf.all.forwarding', 1]);
  return out;
}

export function configureKernel(opts: KernelOptions = {}): void {
  for (const [name, value] of kernelSettings(opts)) writeSysctl(name, value);
}

/** The part of the pod dataplane (podnet.ts) the CNI handler uses. */
export interface PodWiring<S extends { addresses: string[] }, R> {
  wirePod(spec: S): Promise<R>;
}

export const IPV6_OFF_REASON =
  'IPv6 support is off on this node (FELIX_IPV6SUPPORT=false): the agent programs no IPv6 state, so a pod cannot get an IPv6 address here; ' +
  'use IPv4 only (ipam assign_ipv6 false, no IPv6 pools or addresses) or set FELIX_IPV6SUPPORT=true';

/**
 * The pod dataplane with IPv6 support off: wiring a pod with an IPv6 address is refused before
 * anything is done (no veth, no IPv6 sysctl); the CNI ADD fails and undoes its IPAM allocation.
 * Everything else is passed through unchanged.
 */
export function ipv4OnlyPodDataplane<D extends PodWiring<{ addresses: string[] }, unknown>>(dp: D): D {
  const wirePod = async (spec: Parameters<D['wirePod']>[0]) => {
    const v6 = spec.addresses.filter((a) => a.includes(':'));
    if (v6.length > 0) throw new PodNetError('ipv6', `${v6.join(', ')}: ${IPV6_OFF_REASON}`);
    return dp.wirePod(spec);
  };
  return { ...dp, wirePod } as D;
}
