// Test fixture: the e2e pods dual stack (each also has an IPv6 address) and hand-made policies
// whose verdicts differ between the families, for the policy compiler's unit tests and the real
// packet tests (felix/dataplane/linux/policy-table.test.ts). The policies select x/a (ingress) or
// x/b (egress) and name only pods the packet tests wire (x/a, x/b, y/b, z/c) and ports 80/81.
import type { Resource } from '../../../libcalico-go/lib/apis/v3/resource.js';
import type { PolicyModel } from '../../../libcalico-go/lib/policy/model.js';
import { defaultAddresses, e2eModel } from '../../../libcalico-go/lib/policy/truth-table.js';

/** The IPv6 address of an e2e pod: 10.200.I.J → fd00:10:200:I::J (J in hex digits as decimal text). */
export function v6Of(v4: string): string {
  const [, , i, j] = v4.split('.');
  return `fd00:10:200:${i}::${j}`;
}

/** Both addresses of every e2e pod. */
export function dualAddresses(): Record<string, { v4: string; v6: string }> {
  const out: Record<string, { v4: string; v6: string }> = {};
  for (const [k, v4] of Object.entries(defaultAddresses())) out[k] = { v4, v6: v6Of(v4) };
  return out;
}

/** The e2e model with every endpoint dual stack (IPv4 first, as a CNI result lists them). */
export function dualStackModel(resources: readonly Resource[]): PolicyModel {
  const m = e2eModel(resources);
  for (const ep of m.endpoints) ep.ips = [ep.ips[0]!, v6Of(ep.ips[0]!)];
  return m;
}

const A = dualAddresses();
const gnp = (name: string, spec: Record<string, unknown>): Resource => ({ apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name }, spec }) as Resource;
const toXa = (name: string, ...ingress: Array<Record<string, unknown>>) => gnp(name, { selector: "pod == 'a' && projectcalico.org/namespace == 'x'", types: ['Ingress'], ingress });

export interface DualCase {
  name: string;
  resources: Resource[];
  /** The TCP ports to probe (the servers listen on 80 and 81). */
  ports: number[];
}

export const DUAL_CASES: DualCase[] = [
  { name: 'nets IPv6 only: x/b over IPv6 only', resources: [toXa('v6nets', { action: 'Allow', protocol: 'TCP', source: { nets: [`${A['x/b']!.v6}/128`] } })], ports: [80] },
  { name: 'nets IPv4 only: never an IPv6 packet', resources: [toXa('v4nets', { action: 'Allow', protocol: 'TCP', source: { nets: [`${A['x/b']!.v4}/32`] } })], ports: [80] },
  {
    name: 'nets of both families: x/b over IPv4, y/b over IPv6',
    resources: [toXa('mixed', { action: 'Allow', protocol: 'TCP', source: { nets: [`${A['x/b']!.v4}/32`, A['y/b']!.v6] } })],
    ports: [80],
  },
  // evaluate.ts: an IPv6 address is in none of IPv4 notNets, so the rule matches every IPv6 packet
  // (Felix would skip the rule for IPv6 and deny it).
  { name: 'notNets IPv4 only: all IPv6 allowed (evaluator)', resources: [toXa('v4notnets', { action: 'Allow', protocol: 'TCP', source: { notNets: [`${A['x/b']!.v4}/32`] } })], ports: [80] },
  { name: 'notNets IPv6 only: all IPv4 allowed', resources: [toXa('v6notnets', { action: 'Allow', protocol: 'TCP', source: { notNets: [`fd00:10:200::/64`] } })], ports: [80] },
  { name: 'deny notNets IPv4 only, then allow: IPv6 denied, x/b allowed over IPv4', resources: [toXa('denyv4notnets', { action: 'Deny', source: { notNets: [`${A['x/b']!.v4}/32`] } }, { action: 'Allow' })], ports: [80] },
  { name: 'selector: pods b over both families', resources: [toXa('sel', { action: 'Allow', protocol: 'TCP', source: { selector: "pod == 'b'" } })], ports: [80] },
  { name: 'ipVersion 6: IPv6 only', resources: [toXa('ipv6', { action: 'Allow', ipVersion: 6, protocol: 'TCP' })], ports: [80] },
  { name: 'ipVersion 4: IPv4 only', resources: [toXa('ipv4', { action: 'Allow', ipVersion: 4, protocol: 'TCP', source: { selector: "pod == 'b'" } })], ports: [80] },
  { name: 'named port: serve-81-tcp over both families', resources: [toXa('np', { action: 'Allow', protocol: 'TCP', destination: { ports: ['serve-81-tcp'] } })], ports: [80, 81] },
  { name: 'notPorts named: all but serve-80-tcp', resources: [toXa('notnp', { action: 'Allow', protocol: 'TCP', destination: { notPorts: ['serve-80-tcp'] } })], ports: [80, 81] },
  {
    name: 'egress of x/b: to selector pod c or IPv6 nets of x/a',
    resources: [
      gnp('egress', {
        selector: "pod == 'b' && projectcalico.org/namespace == 'x'",
        types: ['Egress'],
        egress: [{ action: 'Allow', protocol: 'TCP', destination: { selector: "pod == 'c'" } }, { action: 'Allow', protocol: 'TCP', destination: { nets: [`${A['x/a']!.v6}/128`] } }],
      }),
    ],
    ports: [80],
  },
  {
    name: 'network set with IPv6 nets in a selector',
    resources: [
      { apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkSet', metadata: { name: 'v6set', labels: { set: 'v6' } }, spec: { nets: [`${A['z/c']!.v6}/128`, `${A['y/b']!.v4}/32`] } } as Resource,
      toXa('netset', { action: 'Allow', protocol: 'TCP', source: { selector: "set == 'v6'" } }),
    ],
    ports: [80],
  },
];
