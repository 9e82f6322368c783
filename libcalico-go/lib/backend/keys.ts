// Calico's etcdv3 key layout (libcalico-go model keys), shared by every backend so that data
// written by Tortie reads back in Calico's tools and the other way round.
import { kindInfo, type KindInfo } from '../apis/v3/kinds.js';
import type { CIDR } from '../net/ip.js';
import { formatCIDR } from '../net/ip.js';

const RESOURCES = '/calico/resources/v3/projectcalico.org';
const IPAM = '/calico/ipam/v2';

function info(kind: string): KindInfo {
  const k = kindInfo(kind);
  if (!k) throw new Error(`unknown kind ${JSON.stringify(kind)}`);
  return k;
}

export function resourceKey(kind: string, name: string, namespace?: string): string {
  const k = info(kind);
  return k.namespaced
    ? `${RESOURCES}/${k.plural}/${namespace ?? 'default'}/${name}`
    : `${RESOURCES}/${k.plural}/${name}`;
}

/** Prefix to list a kind, optionally within one namespace (namespaced kinds only). */
export function resourcePrefix(kind: string, namespace?: string): string {
  const k = info(kind);
  return k.namespaced && namespace !== undefined
    ? `${RESOURCES}/${k.plural}/${namespace}/`
    : `${RESOURCES}/${k.plural}/`;
}

/** Parses a resource key back to its parts; null when it is not one. */
export function parseResourceKey(key: string): { plural: string; namespace?: string; name: string } | null {
  if (!key.startsWith(RESOURCES + '/')) return null;
  const parts = key.slice(RESOURCES.length + 1).split('/');
  if (parts.length === 2) return { plural: parts[0]!, name: parts[1]! };
  if (parts.length === 3) return { plural: parts[0]!, namespace: parts[1]!, name: parts[2]! };
  return null;
}

const fam = (c: CIDR) => (c.version === 4 ? 'ipv4' : 'ipv6');
const cidrPart = (c: CIDR) => formatCIDR(c).replace('/', '-');

export function blockKey(block: CIDR): string {
  return `${IPAM}/assignment/${fam(block)}/block/${cidrPart(block)}`;
}

export function blockPrefix(version?: 4 | 6): string {
  return version === undefined ? `${IPAM}/assignment/` : `${IPAM}/assignment/ipv${version}/block/`;
}

export function affinityKey(host: string, block: CIDR): string {
  return `${IPAM}/host/${host}/${fam(block)}/block/${cidrPart(block)}`;
}

export function affinityPrefix(host?: string, version?: 4 | 6): string {
  if (host === undefined) return `${IPAM}/host/`;
  return version === undefined ? `${IPAM}/host/${host}/` : `${IPAM}/host/${host}/ipv${version}/block/`;
}

/** Parses an affinity key: host and block CIDR text. */
export function parseAffinityKey(key: string): { host: string; cidr: string } | null {
  const m = /^\/calico\/ipam\/v2\/host\/([^/]+)\/ipv[46]\/block\/(.+)$/.exec(key);
  if (!m) return null;
  const i = m[2]!.lastIndexOf('-');
  return { host: m[1]!, cidr: `${m[2]!.slice(0, i)}/${m[2]!.slice(i + 1)}` };
}

export function handleKey(handleId: string): string {
  return `${IPAM}/handle/${handleId}`;
}

export const HANDLE_PREFIX = `${IPAM}/handle/`;
export const IPAM_CONFIG_KEY = `${IPAM}/config`;
