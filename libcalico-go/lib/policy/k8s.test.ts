// Kubernetes NetworkPolicy → Calico NetworkPolicy, and malformed input refused naming the field.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateResource } from '../apis/v3/validate.js';
import { convertK8sNetworkPolicy, convertLabelSelector } from './k8s.js';

const knp = (spec: unknown, meta: Record<string, unknown> = { name: 'web', namespace: 'shop' }) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: meta, spec });
const ORCH = "projectcalico.org/orchestrator == 'k8s'";

describe('convertK8sNetworkPolicy', () => {
  it('names, tiers and orders the policy as Calico does', () => {
    const r = convertK8sNetworkPolicy(knp({ podSelector: {}, policyTypes: ['Ingress'] }));
    assert.deepEqual(r, {
      apiVersion: 'projectcalico.org/v3',
      kind: 'NetworkPolicy',
      metadata: { name: 'knp.default.web', namespace: 'shop' },
      spec: { tier: 'default', order: 1000, selector: ORCH, types: ['Ingress'] },
    });
    assert.equal(validateResource(r).metadata.name, 'knp.default.web');
    assert.equal(convertK8sNetworkPolicy(knp({ podSelector: {} }, { name: 'n' })).metadata.namespace, 'default');
  });

  it('converts selectors: matchLabels and every matchExpressions operator', () => {
    assert.equal(
      convertLabelSelector({ matchLabels: { b: '2', a: '1' }, matchExpressions: [{ key: 'c', operator: 'In', values: ['x', 'y'] }, { key: 'd', operator: 'NotIn', values: ['z'] }, { key: 'e', operator: 'Exists' }, { key: 'f', operator: 'DoesNotExist' }] }, 's'),
      "a == '1' && b == '2' && c in { 'x', 'y' } && d not in { 'z' } && has(e) && ! has(f)",
    );
    assert.equal(convertLabelSelector({}, 's'), '');
  });

  it('translates peers: pods, namespaces, both, ipBlock with except', () => {
    const r = convertK8sNetworkPolicy(
      knp({
        podSelector: { matchLabels: { app: 'web' } },
        ingress: [
          {
            from: [
              { podSelector: { matchLabels: { role: 'fe' } } },
              { namespaceSelector: {} },
              { namespaceSelector: { matchLabels: { team: 'a' } }, podSelector: { matchLabels: { role: 'x' } } },
              { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } },
            ],
          },
        ],
      }),
    );
    const spec = r.spec as { selector: string; types: string[]; ingress: unknown[] };
    assert.equal(spec.selector, `${ORCH} && app == 'web'`);
    assert.deepEqual(spec.types, ['Ingress']);
    assert.deepEqual(spec.ingress, [
      { action: 'Allow', source: { selector: `${ORCH} && role == 'fe'` } },
      { action: 'Allow', source: { selector: ORCH, namespaceSelector: 'all()' } },
      { action: 'Allow', source: { selector: `${ORCH} && role == 'x'`, namespaceSelector: "team == 'a'" } },
      { action: 'Allow', source: { nets: ['10.0.0.0/8'], notNets: ['10.1.0.0/16'] } },
    ]);
    validateResource(r);
  });

  it('translates ports: one rule per protocol, ranges from endPort, named ports, protocol-only', () => {
    const r = convertK8sNetworkPolicy(
      knp({
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [{ to: [{ podSelector: {} }], ports: [{ port: 80 }, { protocol: 'UDP', port: 53 }, { port: 8000, endPort: 8080 }, { port: 'metrics' }, { protocol: 'SCTP' }] }],
      }),
    );
    assert.deepEqual((r.spec as { egress: unknown[] }).egress, [
      { action: 'Allow', protocol: 'TCP', destination: { selector: ORCH, ports: [80, '8000:8080', 'metrics'] } },
      { action: 'Allow', protocol: 'UDP', destination: { selector: ORCH, ports: [53] } },
      { action: 'Allow', protocol: 'SCTP', destination: { selector: ORCH } },
    ]);
    assert.deepEqual((r.spec as { types: string[] }).types, ['Egress']);
    validateResource(r);
  });

  it('tells empty rules from missing ones, and defaults policyTypes as Kubernetes does', () => {
    const allowAll = convertK8sNetworkPolicy(knp({ podSelector: {}, ingress: [{}] }));
    assert.deepEqual((allowAll.spec as { ingress: unknown[] }).ingress, [{ action: 'Allow' }]);
    const denyAll = convertK8sNetworkPolicy(knp({ podSelector: {}, ingress: [] }));
    assert.equal((denyAll.spec as { ingress?: unknown }).ingress, undefined);
    assert.deepEqual((denyAll.spec as { types: string[] }).types, ['Ingress']);
    const eg = convertK8sNetworkPolicy(knp({ podSelector: {}, egress: [{}] }));
    assert.deepEqual((eg.spec as { types: string[] }).types, ['Ingress', 'Egress']);
    // Rules of a type the policy does not have are dropped.
    const only = convertK8sNetworkPolicy(knp({ podSelector: {}, policyTypes: ['Egress'], ingress: [{}] }));
    assert.equal((only.spec as { ingress?: unknown }).ingress, undefined);
  });

  const BAD: Array<[string, unknown, RegExp]> = [
    ['not an object', 'x', /NetworkPolicy: must be an object/],
    ['wrong apiVersion', { ...knp({ podSelector: {} }), apiVersion: 'v1' }, /apiVersion: "v1"/],
    ['no name', knp({ podSelector: {} }, {}), /metadata\.name: is required/],
    ['bad name', knp({ podSelector: {} }, { name: 'Web_1' }), /metadata\.name: "Web_1"/],
    ['no spec', { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'a' } }, /\bspec: is required/],
    ['no podSelector', knp({}), /spec\.podSelector: is required/],
    ['unknown spec field', knp({ podSelector: {}, egres: [] }), /spec\.egres: unknown field/],
    ['bad operator', knp({ podSelector: { matchExpressions: [{ key: 'a', operator: 'Is', values: ['b'] }] } }), /spec\.podSelector\.matchExpressions\[0\]\.operator: "Is"/],
    ['In without values', knp({ podSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }), /matchExpressions\[0\]\.values: must be non-empty/],
    ['Exists with values', knp({ podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['b'] }] } }), /values: must be empty/],
    ['bad label value', knp({ podSelector: { matchLabels: { a: "it's" } } }), /spec\.podSelector\.matchLabels\.a/],
    ['bad protocol', knp({ podSelector: {}, ingress: [{ ports: [{ protocol: 'ICMP', port: 1 }] }] }), /spec\.ingress\[0\]\.ports\[0\]\.protocol: "ICMP"/],
    ['port out of range', knp({ podSelector: {}, ingress: [{ ports: [{ port: 70000 }] }] }), /ports\[0\]\.port: 70000/],
    ['endPort below port', knp({ podSelector: {}, ingress: [{ ports: [{ port: 90, endPort: 80 }] }] }), /ports\[0\]\.endPort: 80 is less than port 90/],
    ['endPort with named port', knp({ podSelector: {}, ingress: [{ ports: [{ port: 'http', endPort: 80 }] }] }), /ports\[0\]\.endPort: is not allowed with the named port/],
    ['endPort without port', knp({ podSelector: {}, ingress: [{ ports: [{ endPort: 80 }] }] }), /ports\[0\]\.endPort: needs a numeric port/],
    ['bad port name', knp({ podSelector: {}, ingress: [{ ports: [{ port: 'Not_A_Name' }] }] }), /ports\[0\]\.port: "Not_A_Name"/],
    ['bad cidr', knp({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/33' } }] }] }), /spec\.ingress\[0\]\.from\[0\]\.ipBlock\.cidr: "10\.0\.0\.0\/33"/],
    ['except outside cidr', knp({ podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.1.0.0/24'] } }] }] }), /spec\.egress\[0\]\.to\[0\]\.ipBlock\.except\[0\]: 10\.1\.0\.0\/24 is not inside/],
    ['ipBlock with a selector', knp({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] }] }), /from\[0\]\.ipBlock: cannot be combined/],
    ['empty peer', knp({ podSelector: {}, ingress: [{ from: [{}] }] }), /from\[0\]: must have podSelector/],
    ['to in an ingress rule', knp({ podSelector: {}, ingress: [{ to: [] }] }), /spec\.ingress\[0\]\.to: unknown field/],
    ['bad policyType', knp({ podSelector: {}, policyTypes: ['Both'] }), /spec\.policyTypes\[0\]: "Both"/],
    ['rules not a list', knp({ podSelector: {}, ingress: {} }), /spec\.ingress: must be a list/],
  ];
  for (const [what, input, msg] of BAD) {
    it(`refuses ${what}`, () => assert.throws(() => convertK8sNetworkPolicy(input), msg));
  }
});
