// Test fixture: a policy model on the e2e pods (tiers, a GlobalNetworkSet, named ports, selectors
// and namespace selectors, all nine pods local) and the single changes the agent sees in a
// cluster, each as a function that edits a copy. Used by policy-compiler.test.ts (a compiler that
// keeps its results compiles each change exactly as a fresh one) and by
// felix/dataplane/linux/policy-table.test.ts (each change written incrementally leaves the kernel
// with the table a full rewrite gives).
import { fileURLToPath } from 'node:url';
import type { Resource } from '../../../libcalico-go/lib/apis/v3/resource.js';
import { type PolicyModel, makeEndpoint } from '../../../libcalico-go/lib/policy/model.js';
import { POD_KEYS, calicoResources, e2eModel, loadCase } from '../../../libcalico-go/lib/policy/truth-table.js';
import type { CompileOptions, LocalEndpoint } from '../policy-compiler.js';

export const CASES = fileURLToPath(new URL('../../../../libcalico-go/lib/policy/testdata/cases', import.meta.url));

export interface Situation {
  model: PolicyModel;
  local: LocalEndpoint[];
  opts: CompileOptions;
}

export interface Change {
  name: string;
  /** Edits the situation in place. */
  apply(s: Situation): void;
}

/** Interface names: `prefix` + index of the pod in POD_KEYS. */
export function baseSituation(ifPrefix = 'cali'): Situation {
  const resources = ['22-tier-pass-to-default', '27-global-network-set', '11-named-port', '26-nets-notnets'].flatMap((c) =>
    calicoResources(loadCase(`${CASES}/${c}.yaml`).policies),
  );
  const model = e2eModel(resources);
  return { model, local: POD_KEYS.map((k, i) => ({ key: k, interfaceName: `${ifPrefix}${i}` })), opts: {} };
}

export function cloneSituation(s: Situation): Situation {
  return structuredClone(s);
}

const gnp = (name: string, spec: Record<string, unknown>): Resource => ({ apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name }, spec }) as Resource;
const byName = (m: PolicyModel, name: string) => {
  const p = m.policies.find((x) => x.metadata.name === name);
  if (!p) throw new Error(`fixture: no policy ${name} (have ${m.policies.map((x) => x.metadata.name).join(', ')})`);
  return p;
};
const endpoint = (m: PolicyModel, key: string) => {
  const ep = m.endpoints.find((e) => e.key === key);
  if (!ep) throw new Error(`fixture: no endpoint ${key}`);
  return ep;
};

/** The changes the kernel tests write incrementally (each from baseSituation()). */
export const CHANGES: Change[] = [
  {
    name: 'policy added',
    apply: ({ model }) => {
      model.policies.push(
        gnp('extra', {
          selector: "pod == 'b'",
          order: 5,
          types: ['Ingress', 'Egress'],
          ingress: [{ action: 'Allow', protocol: 'TCP', source: { nets: ['10.9.0.0/16'] }, destination: { ports: [443, '8000:8080'] } }],
          egress: [{ action: 'Deny', destination: { selector: "pod == 'c'", namespaceSelector: "ns == 'z'" } }],
        }),
      );
    },
  },
  {
    name: 'policy rule changed',
    apply: ({ model }) => {
      const spec = byName(model, 'from-trusted').spec as { ingress: Array<Record<string, unknown>> };
      spec.ingress[0] = { action: 'Allow', protocol: 'TCP', source: { selector: "role == 'trusted'" }, destination: { ports: [81] } };
    },
  },
  {
    name: 'policy deleted',
    apply: ({ model }) => {
      model.policies = model.policies.filter((p) => p.metadata.name !== 'security.guard-x');
    },
  },
  {
    name: 'endpoint added',
    apply: ({ model, local }) => {
      model.endpoints.push(
        makeEndpoint({ namespace: 'y', name: 'd', labels: { pod: 'a' }, ips: ['10.200.1.20'], namespaceLabels: { ns: 'y', 'kubernetes.io/metadata.name': 'y' }, namedPorts: [{ name: 'serve-81-tcp', port: 81, protocol: 'TCP' }] }),
      );
      local.push({ key: 'y/d', interfaceName: `${local[0]!.interfaceName.replace(/\d+$/, '')}9` });
    },
  },
  {
    name: 'endpoint removed',
    apply: ({ model, local }) => {
      model.endpoints = model.endpoints.filter((e) => e.key !== 'y/a');
      const i = local.findIndex((l) => l.key === 'y/a');
      local.splice(i, 1);
    },
  },
  {
    name: 'label change (set membership)',
    apply: ({ model }) => {
      endpoint(model, 'y/b').labels.pod = 'a';
    },
  },
  {
    name: 'tier added',
    apply: ({ model }) => {
      model.tiers.push({ apiVersion: 'projectcalico.org/v3', kind: 'Tier', metadata: { name: 'platform' }, spec: { order: 50 } } as Resource);
      model.policies.push(
        gnp('platform.guard', {
          tier: 'platform',
          selector: "pod == 'a'",
          types: ['Ingress'],
          ingress: [{ action: 'Pass', source: { selector: "pod == 'b'" } }, { action: 'Deny', protocol: 'UDP' }],
        }),
      );
    },
  },
];

/** More changes for the compiler's own test (no need to go to the kernel for each). */
export const MORE_CHANGES: Change[] = [
  {
    name: 'endpoint address changed',
    apply: ({ model }) => {
      endpoint(model, 'z/c').ips = ['10.200.2.99'];
    },
  },
  {
    name: 'non-local endpoint added',
    apply: ({ model }) => {
      model.endpoints.push(makeEndpoint({ namespace: 'z', name: 'far', labels: { pod: 'a' }, ips: ['10.201.0.1'], namespaceLabels: { ns: 'z', 'kubernetes.io/metadata.name': 'z' } }));
    },
  },
  {
    name: 'namespace labels changed',
    apply: ({ model }) => {
      model.namespaces.find((n) => n.name === 'z')!.labels.ns = 'y';
    },
  },
  {
    name: 'network set changed',
    apply: ({ model }) => {
      (model.networkSets[0]!.spec as { nets: string[] }).nets.push('192.0.2.0/25', '192.0.2.128/25', '192.0.2.7');
    },
  },
  {
    name: 'profile added',
    apply: ({ model }) => {
      model.profiles.push({ apiVersion: 'projectcalico.org/v3', kind: 'Profile', metadata: { name: 'kns.z' }, spec: { ingress: [{ action: 'Allow', protocol: 'TCP' }], egress: [{ action: 'Allow' }] } } as Resource);
    },
  },
  {
    name: 'DefaultEndpointToHostAction Drop',
    apply: (s) => {
      s.opts = { ...s.opts, endpointToHostAction: 'Drop' };
    },
  },
  {
    name: 'local endpoint gone (pod still in the model)',
    apply: ({ local }) => {
      local.splice(0, 1);
    },
  },
  {
    name: 'policy order changed',
    apply: ({ model }) => {
      (byName(model, 'from-trusted').spec as { order?: number }).order = 1;
    },
  },
];
