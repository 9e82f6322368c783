// NetworkSet and GlobalNetworkSet: named lists of CIDRs that policies select by label.
//
// `nets` entries may have host bits (Calico's `cidr` validator allows them); the stored form is
// the network (`10.0.0.5/24` → `10.0.0.0/24`) and a bare address becomes /32 or /128.
// The label `projectcalico.org/namespace` is reserved and refused.

import { checkCIDR } from './common.js';
import { type Ctx, type Obj, checkKnown, put, readStringList } from './context.js';

export function validateNetworkSetSpec(ctx: Ctx, spec: Obj, labels: Record<string, string>): Obj {
  checkKnown(ctx, spec, 'spec', ['nets'], `${ctx.kind} spec`);
  if (Object.hasOwn(labels, 'projectcalico.org/namespace')) {
    const v = labels['projectcalico.org/namespace'];
    ctx.say('metadata.labels.projectcalico.org/namespace', v, `the label "projectcalico.org/namespace" (value ${JSON.stringify(v)}) is reserved and may not be set`);
  }
  const out: Obj = {};
  put(out, 'nets', readStringList(ctx, spec, 'nets', 'spec', (s, p) => checkCIDR(ctx, s, p, { allowBareIP: true })));
  return out;
}
