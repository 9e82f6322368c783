// Which endpoints of a policy model are local to this node, from the WorkloadEndpoint resources as
// stored (spec.node, spec.interfaceName): the second input of compilePolicy. Pure.
import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';
import type { LocalEndpoint } from './policy-compiler.js';

type Obj = Record<string, unknown>;

/**
 * The WorkloadEndpoints on `nodeName` that have a host interface, keyed "NS/POD" as the policy
 * model's endpoints are (spec.pod, else the resource name). Sorted by interface name.
 */
export function localEndpointsOf(weps: readonly Resource[], nodeName: string): LocalEndpoint[] {
  const out: LocalEndpoint[] = [];
  for (const w of weps) {
    if (w.kind !== 'WorkloadEndpoint') continue;
    const spec = (w.spec ?? {}) as Obj;
    if (spec.node !== nodeName) continue;
    if (typeof spec.interfaceName !== 'string' || spec.interfaceName === '') continue;
    const pod = typeof spec.pod === 'string' && spec.pod !== '' ? spec.pod : w.metadata.name;
    out.push({ key: `${w.metadata.namespace ?? 'default'}/${pod}`, interfaceName: spec.interfaceName });
  }
  return out.sort((a, b) => (a.interfaceName < b.interfaceName ? -1 : a.interfaceName > b.interfaceName ? 1 : 0));
}
