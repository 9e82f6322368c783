// CalicoNodeStatus: which node's status to collect (spec.node), which classes (Agent, BGP,
// Routes) and how often (spec.updatePeriodSeconds); the node's agent writes status.

import { type Ctx, type Obj, checkEnum, checkKnown, put, readInt, readString, readStringList } from './context.js';

export const NODE_STATUS_CLASSES = ['Agent', 'BGP', 'Routes'] as const;

export function validateCalicoNodeStatusSpec(ctx: Ctx, spec: Obj): Obj {
  checkKnown(ctx, spec, 'spec', ['node', 'classes', 'updatePeriodSeconds'], 'CalicoNodeStatus spec');
  const out: Obj = {};
  put(out, 'node', readString(ctx, spec, 'node', 'spec'));
  put(out, 'classes', readStringList(ctx, spec, 'classes', 'spec', (c, p) => checkEnum(ctx, c, p, NODE_STATUS_CLASSES)));
  put(out, 'updatePeriodSeconds', readInt(ctx, spec, 'updatePeriodSeconds', 'spec', { min: 0, max: 3600 }));
  return out;
}
