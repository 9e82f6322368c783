// ClusterInformation (the one named "default"): written by calico-node and kube-controllers.

import { type Ctx, type Obj, checkKnown, put, readBool, readString } from './context.js';

export function validateClusterInformationSpec(ctx: Ctx, spec: Obj): Obj {
  checkKnown(ctx, spec, 'spec', ['clusterGUID', 'clusterType', 'calicoVersion', 'datastoreReady', 'variant'], 'ClusterInformation spec');
  const out: Obj = {};
  for (const k of ['clusterGUID', 'clusterType', 'calicoVersion', 'variant']) {
    const v = readString(ctx, spec, k, 'spec');
    if (v) out[k] = v;
  }
  put(out, 'datastoreReady', readBool(ctx, spec, 'datastoreReady', 'spec'));
  return out;
}
