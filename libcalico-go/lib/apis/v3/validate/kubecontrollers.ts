// KubeControllersConfiguration (the one named "default").
//
// Defaults written, as Calico's CRD does: healthChecks Enabled, and `controllers` present (an
// empty object when not given; which controllers run is up to kube-controllers).

import { checkCIDR, checkDuration, checkLabels, checkSubdomain, readSelector } from './common.js';
import {
  type Ctx,
  type Obj,
  checkKnown,
  join,
  put,
  readEnum,
  readInt,
  readObj,
  readObjList,
  readString,
  readStringList,
  readStringMap,
} from './context.js';
import { checkLogSeverity } from './bgp.js';

const ENABLED = ['Enabled', 'Disabled'] as const;

function duration(ctx: Ctx, o: Obj, key: string, path: string): string | undefined {
  const v = o[key];
  return v === undefined || v === null ? undefined : checkDuration(ctx, v, join(path, key));
}

function reconcilerOnly(ctx: Ctx, c: Obj, p: string, what: string): Obj {
  checkKnown(ctx, c, p, ['reconcilerPeriod'], what);
  const out: Obj = {};
  put(out, 'reconcilerPeriod', duration(ctx, c, 'reconcilerPeriod', p));
  return out;
}

function template(ctx: Ctx, t: Obj, p: string): Obj {
  checkKnown(ctx, t, p, ['generateName', 'interfaceCIDRs', 'interfacePattern', 'labels', 'annotations', 'nodeSelector'], 'a host endpoint template');
  const out: Obj = {};
  const gn = readString(ctx, t, 'generateName', p, { required: true, hint: 'a template needs a generateName' });
  if (gn) put(out, 'generateName', checkSubdomain(ctx, gn, join(p, 'generateName')));
  put(out, 'interfaceCIDRs', readStringList(ctx, t, 'interfaceCIDRs', p, (s, sp) => checkCIDR(ctx, s, sp, { allowBareIP: true })));
  const pat = readString(ctx, t, 'interfacePattern', p);
  if (pat) {
    try {
      new RegExp(pat);
      out.interfacePattern = pat;
    } catch {
      ctx.invalid(join(p, 'interfacePattern'), pat, 'is not a valid regular expression');
    }
  }
  if (!(Array.isArray(t.interfaceCIDRs) && t.interfaceCIDRs.length > 0) && !pat) {
    ctx.missing(join(p, 'interfaceCIDRs'), 'a template needs interfaceCIDRs or interfacePattern');
  }
  const labels = readStringMap(ctx, t, 'labels', p);
  if (labels) out.labels = checkLabels(ctx, labels, join(p, 'labels'));
  put(out, 'annotations', readStringMap(ctx, t, 'annotations', p));
  put(out, 'nodeSelector', readSelector(ctx, t, 'nodeSelector', p));
  return out;
}

function nodeController(ctx: Ctx, c: Obj, p: string): Obj {
  checkKnown(ctx, c, p, ['reconcilerPeriod', 'syncLabels', 'hostEndpoint', 'leakGracePeriod'], 'the node controller');
  const out: Obj = {};
  put(out, 'reconcilerPeriod', duration(ctx, c, 'reconcilerPeriod', p));
  put(out, 'syncLabels', readEnum(ctx, c, 'syncLabels', p, ENABLED));
  put(out, 'leakGracePeriod', duration(ctx, c, 'leakGracePeriod', p));
  const hep = readObj(ctx, c, 'hostEndpoint', p);
  if (hep) {
    const hp = join(p, 'hostEndpoint');
    checkKnown(ctx, hep, hp, ['autoCreate', 'createDefaultHostEndpoint', 'templates'], 'hostEndpoint');
    const h: Obj = {};
    put(h, 'autoCreate', readEnum(ctx, hep, 'autoCreate', hp, ENABLED));
    put(h, 'createDefaultHostEndpoint', readEnum(ctx, hep, 'createDefaultHostEndpoint', hp, ENABLED));
    const templates = readObjList(ctx, hep, 'templates', hp, (t, tp) => template(ctx, t, tp));
    if (templates) {
      const names = templates.map((t) => t.generateName).filter((n) => n !== undefined);
      if (new Set(names).size !== names.length) ctx.invalid(join(hp, 'templates'), names, 'has template generateNames that are not unique');
      h.templates = templates;
    }
    out.hostEndpoint = h;
  }
  return out;
}

export function validateKubeControllersConfigurationSpec(ctx: Ctx, spec: Obj): Obj {
  checkKnown(
    ctx,
    spec,
    'spec',
    ['logSeverityScreen', 'healthChecks', 'etcdV3CompactionPeriod', 'prometheusMetricsPort', 'controllers', 'debugProfilePort'],
    'KubeControllersConfiguration spec',
  );
  const out: Obj = {};
  const sev = readString(ctx, spec, 'logSeverityScreen', 'spec');
  if (sev) put(out, 'logSeverityScreen', checkLogSeverity(ctx, sev, 'spec.logSeverityScreen', ['None', 'Debug', 'Info', 'Warning', 'Error', 'Fatal', 'Panic']));
  out.healthChecks = readEnum(ctx, spec, 'healthChecks', 'spec', ENABLED) ?? 'Enabled';
  put(out, 'etcdV3CompactionPeriod', duration(ctx, spec, 'etcdV3CompactionPeriod', 'spec'));
  put(out, 'prometheusMetricsPort', readInt(ctx, spec, 'prometheusMetricsPort', 'spec', { min: 0, max: 65535 }));
  put(out, 'debugProfilePort', readInt(ctx, spec, 'debugProfilePort', 'spec', { min: 0, max: 65535 }));

  const c = readObj(ctx, spec, 'controllers', 'spec') ?? {};
  const cp = 'spec.controllers';
  checkKnown(ctx, c, cp, ['node', 'policy', 'workloadEndpoint', 'serviceAccount', 'namespace', 'loadBalancer', 'migration'], 'controllers');
  const co: Obj = {};
  const node = readObj(ctx, c, 'node', cp);
  if (node) co.node = nodeController(ctx, node, join(cp, 'node'));
  for (const k of ['policy', 'workloadEndpoint', 'serviceAccount', 'namespace']) {
    const x = readObj(ctx, c, k, cp);
    if (x) co[k] = reconcilerOnly(ctx, x, join(cp, k), `the ${k} controller`);
  }
  const lb = readObj(ctx, c, 'loadBalancer', cp);
  if (lb) {
    const lp = join(cp, 'loadBalancer');
    checkKnown(ctx, lb, lp, ['assignIPs'], 'the loadBalancer controller');
    const l: Obj = {};
    put(l, 'assignIPs', readEnum(ctx, lb, 'assignIPs', lp, ['AllServices', 'RequestedServicesOnly']) ?? 'AllServices');
    co.loadBalancer = l;
  }
  const mig = readObj(ctx, c, 'migration', cp);
  if (mig) {
    const mp = join(cp, 'migration');
    checkKnown(ctx, mig, mp, ['policyNameMigrator'], 'the migration controller');
    const m: Obj = {};
    put(m, 'policyNameMigrator', readEnum(ctx, mig, 'policyNameMigrator', mp, ENABLED));
    co.migration = m;
  }
  out.controllers = co;
  return out;
}
