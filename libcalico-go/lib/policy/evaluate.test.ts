// The evaluator's explanations: which tier, policy and rule decided each direction.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../apis/v3/resource.js';
import { verdict } from './evaluate.js';
import { type PolicyModel, emptyModel, makeEndpoint } from './model.js';

function model(policies: Resource[], extra: Partial<PolicyModel> = {}): PolicyModel {
  const m = emptyModel();
  m.namespaces.push({ name: 'web', labels: { team: 'w' } }, { name: 'db', labels: { team: 'd' } });
  m.endpoints.push(
    makeEndpoint({ namespace: 'web', name: 'front', labels: { app: 'front' }, ips: ['10.0.0.1'], namespaceLabels: { team: 'w' }, serviceAccount: 'sa-front' }),
    makeEndpoint({
      namespace: 'db',
      name: 'pg',
      labels: { app: 'pg' },
      ips: ['10.0.1.1'],
      namespaceLabels: { team: 'd' },
      namedPorts: [{ name: 'postgres', port: 5432, protocol: 'TCP' }],
    }),
  );
  m.policies.push(...policies);
  Object.assign(m, extra);
  return m;
}

const gnp = (name: string, spec: Record<string, unknown>): Resource => ({ apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name }, spec });
const np = (ns: string, name: string, spec: Record<string, unknown>): Resource => ({ apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec });

describe('policy verdict', () => {
  it('allows through the kns profiles when no policy selects either side', () => {
    const v = verdict(model([]), { src: 'web/front', dst: 'db/pg', protocol: 'TCP', port: 5432 });
    assert.equal(v.allowed, true);
    assert.equal(v.egress.by, 'profile');
    assert.equal(v.egress.profile, 'kns.web');
    assert.equal(v.ingress.text, 'profile kns.db: allow');
  });

  it('names the rule that allowed, with a named port', () => {
    const m = model([np('db', 'allow-front', { selector: "app == 'pg'", types: ['Ingress'], ingress: [{ action: 'Deny', protocol: 'UDP' }, { action: 'Allow', protocol: 'TCP', source: { namespaceSelector: "team == 'w'" }, destination: { ports: ['postgres'] } }] })]);
    const v = verdict(m, { src: 'web/front', dst: 'db/pg', protocol: 'TCP', port: 5432 });
    assert.equal(v.allowed, true);
    assert.deepEqual([v.ingress.by, v.ingress.tier, v.ingress.policy, v.ingress.rule, v.ingress.action], ['rule', 'default', 'db/allow-front', 1, 'Allow']);
    const other = verdict(m, { src: 'web/front', dst: 'db/pg', protocol: 'TCP', port: 5433 });
    assert.equal(other.allowed, false);
    assert.equal(other.ingress.by, 'end of tier');
    assert.match(other.ingress.text, /tier default: end of tier/);
    const udp = verdict(m, { src: 'web/front', dst: 'db/pg', protocol: 'UDP', port: 5432 });
    assert.equal(udp.ingress.rule, 0);
    assert.equal(udp.ingress.action, 'Deny');
  });

  it('evaluates egress of the source as well', () => {
    const m = model([gnp('no-egress', { selector: "app == 'front'", types: ['Egress'] })]);
    const v = verdict(m, { src: 'web/front', dst: 'db/pg', protocol: 'TCP', port: 80 });
    assert.equal(v.allowed, false);
    assert.equal(v.egress.by, 'end of tier');
    assert.equal(v.ingress.allowed, true);
  });

  it('passes to the next tier and records Log rules on the way', () => {
    const m = model(
      [
        gnp('sec.pass', { tier: 'sec', selector: 'all()', types: ['Ingress'], ingress: [{ action: 'Log' }, { action: 'Pass' }] }),
        gnp('deny-all', { tier: 'default', selector: "app == 'pg'", types: ['Ingress'], ingress: [{ action: 'Deny', source: { nets: ['10.0.0.0/24'] } }] }),
      ],
      { tiers: [{ apiVersion: 'projectcalico.org/v3', kind: 'Tier', metadata: { name: 'sec' }, spec: { order: 10 } }] },
    );
    const v = verdict(m, { src: 'web/front', dst: 'db/pg', protocol: 'TCP', port: 80 });
    assert.equal(v.allowed, false);
    assert.equal(v.ingress.policy, 'deny-all');
    assert.deepEqual(v.ingress.trail, ['tier sec, GlobalNetworkPolicy sec.pass, ingress rule 0: Log', 'tier sec, GlobalNetworkPolicy sec.pass, ingress rule 1: Pass']);
    // The reverse direction: front is selected in sec, passes, no default policy → profile.
    const back = verdict(m, { src: 'db/pg', dst: 'web/front', protocol: 'TCP', port: 80 });
    assert.equal(back.allowed, true);
    assert.equal(back.ingress.profile, 'kns.web');
  });

  it('sorts by order, then by name', () => {
    const m = model([gnp('b-allow', { order: 5, selector: 'all()', ingress: [{ action: 'Allow' }] }), gnp('a-deny', { order: 5, selector: 'all()', ingress: [{ action: 'Deny' }] })]);
    assert.equal(verdict(m, { src: 'web/front', dst: 'db/pg', protocol: 'TCP', port: 1 }).ingress.policy, 'a-deny');
    const m2 = model([gnp('b-allow', { order: 4, selector: 'all()', ingress: [{ action: 'Allow' }] }), gnp('a-deny', { order: 5, selector: 'all()', ingress: [{ action: 'Deny' }] })]);
    assert.equal(verdict(m2, { src: 'web/front', dst: 'db/pg', protocol: 'TCP', port: 1 }).ingress.policy, 'b-allow');
    const m3 = model([gnp('b-allow', { order: 4, selector: 'all()', ingress: [{ action: 'Allow' }] }), gnp('a-deny', { selector: 'all()', ingress: [{ action: 'Deny' }] })]);
    assert.equal(verdict(m3, { src: 'web/front', dst: 'db/pg', protocol: 'TCP', port: 1 }).ingress.policy, 'b-allow', 'unset order sorts last');
  });

  it('handles bare addresses, network sets, service accounts and ICMP', () => {
    const m = model(
      [
        np('db', 'pg', {
          selector: "app == 'pg'",
          ingress: [
            { action: 'Allow', source: { selector: "kind == 'office'" } },
            { action: 'Allow', source: { namespaceSelector: 'all()', serviceAccounts: { names: ['sa-front'] } } },
            { action: 'Allow', protocol: 'ICMP', icmp: { type: 8 } },
          ],
        }),
      ],
      { networkSets: [{ apiVersion: 'projectcalico.org/v3', kind: 'NetworkSet', metadata: { name: 'office', namespace: 'db', labels: { kind: 'office' } }, spec: { nets: ['192.168.0.0/16'] } }] },
    );
    const office = verdict(m, { src: { ip: '192.168.3.4' }, dst: 'db/pg', protocol: 'TCP', port: 22 });
    assert.equal(office.allowed, true);
    assert.equal(office.egress.by, 'no policy');
    assert.equal(office.ingress.rule, 0);
    assert.equal(verdict(m, { src: { ip: '172.16.0.1' }, dst: 'db/pg', protocol: 'TCP', port: 22 }).allowed, false);
    assert.equal(verdict(m, { src: { ip: '172.16.0.1' }, dst: 'db/pg', protocol: 'ICMP' }).ingress.rule, 2);
    const sa = verdict(m, { src: { ip: '10.0.0.1' }, dst: { ip: '10.0.1.1' }, protocol: 'TCP', port: 22 });
    assert.equal(sa.ingress.rule, 1, 'an address of a known endpoint is that endpoint');
    assert.throws(() => verdict(m, { src: 'nope/x', dst: 'db/pg', protocol: 'TCP', port: 1 }), /unknown endpoint "nope\/x"/);
  });

  it('applies Profile rules when a kns profile resource exists', () => {
    const m = model([], { profiles: [{ apiVersion: 'projectcalico.org/v3', kind: 'Profile', metadata: { name: 'kns.db' }, spec: { ingress: [{ action: 'Deny', protocol: 'UDP' }, { action: 'Allow' }], egress: [{ action: 'Allow' }] } }] });
    const v = verdict(m, { src: 'web/front', dst: 'db/pg', protocol: 'UDP', port: 53 });
    assert.equal(v.allowed, false);
    assert.equal(v.ingress.text, 'profile kns.db, ingress rule 0: Deny');
  });

  it('an empty nets or ports list constrains nothing, as in Calico', () => {
    const deny = (rule: Record<string, unknown>) =>
      verdict(model([gnp('d', { selector: "app == 'pg'", types: ['Ingress'], ingress: [{ action: 'Deny', ...rule }, { action: 'Allow' }] })]), { src: 'web/front', dst: 'db/pg', protocol: 'TCP', port: 5432 }).allowed;
    assert.equal(deny({ source: { nets: [] } }), false, 'nets: [] matches every source');
    assert.equal(deny({ protocol: 'TCP', destination: { ports: [] } }), false, 'ports: [] matches every port');
    assert.equal(deny({ source: { nets: ['192.168.0.0/16'] } }), true, 'a non-empty list does constrain');
  });

  it('a rule whose nets or notNets have no entry of the packet family does not apply to it (Felix per-family rules)', () => {
    const m = emptyModel();
    m.endpoints.push(
      makeEndpoint({ namespace: 'a', name: 'c', ips: ['10.0.0.1', 'fd00::1'] }),
      makeEndpoint({ namespace: 'a', name: 's', labels: { app: 's' }, ips: ['10.0.0.2', 'fd00::2'] }),
    );
    m.policies.push(gnp('v4-only', { selector: "app == 's'", types: ['Ingress'], ingress: [{ action: 'Deny', source: { notNets: ['192.168.0.0/16'] } }, { action: 'Allow' }] }));
    const v4 = verdict(m, { src: { ip: '10.0.0.1' }, dst: { ip: '10.0.0.2' }, protocol: 'TCP', port: 80 });
    const v6 = verdict(m, { src: { ip: 'fd00::1' }, dst: { ip: 'fd00::2' }, protocol: 'TCP', port: 80 });
    assert.equal(v4.allowed, false, 'IPv4 outside 192.168/16: denied');
    assert.equal(v6.allowed, true, 'IPv6: the IPv4-only notNets rule is skipped, the next allows');
  });

  it('ICMPv6 echo requests meet icmp/notICMP rules with protocol ICMPv6', () => {
    const m = emptyModel();
    m.endpoints.push(makeEndpoint({ namespace: 'a', name: 'c', ips: ['fd00::1'] }), makeEndpoint({ namespace: 'a', name: 's', labels: { app: 's' }, ips: ['fd00::2'] }));
    const ping = (rule: Record<string, unknown>) => {
      const mm = { ...m, policies: [gnp('p', { selector: "app == 's'", types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'ICMPv6', ...rule }] })] };
      return verdict(mm, { src: { ip: 'fd00::1' }, dst: { ip: 'fd00::2' }, protocol: 'ICMPv6' }).allowed;
    };
    assert.equal(ping({ icmp: { type: 128, code: 0 } }), true, 'echo request');
    assert.equal(ping({ icmp: { type: 129 } }), false, 'echo reply only');
    assert.equal(ping({ notICMP: { type: 128 } }), false, 'all but echo request');
  });
});
