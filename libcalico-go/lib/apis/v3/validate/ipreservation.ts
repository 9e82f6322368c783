// IPReservation: addresses IPAM must never hand out.
//
// `reservedCIDRs` entries may be CIDRs (host bits allowed, as Calico's `cidrs` validator allows;
// they are cleared in the stored form) or bare addresses (stored as /32 or /128).

import { checkCIDR } from './common.js';
import { type Ctx, type Obj, checkKnown, put, readStringList } from './context.js';

export function validateIPReservationSpec(ctx: Ctx, spec: Obj): Obj {
  checkKnown(ctx, spec, 'spec', ['reservedCIDRs'], 'IPReservation spec');
  const out: Obj = {};
  put(
    out,
    'reservedCIDRs',
    readStringList(ctx, spec, 'reservedCIDRs', 'spec', (s, p) => checkCIDR(ctx, s, p, { allowBareIP: true })),
  );
  return out;
}
