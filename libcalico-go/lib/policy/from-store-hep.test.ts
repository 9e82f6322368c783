// Host endpoint policy stored by Calico (doNotTrack / preDNAT GlobalNetworkPolicies) never applies
// to workloads, as in Calico: the model read from the datastore leaves it out.
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbedded } from '../backend/embedded/embedded.js';
import { resourceKey } from '../backend/keys.js';
import { verdict } from './evaluate.js';
import { appliesToWorkloads, modelFromStore } from './from-store.js';

const dir = mkdtempSync(join(tmpdir(), 'tortie-from-store-hep-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('stored doNotTrack and preDNAT policies do not police pods; applyOnForward alone and plain policies do', async () => {
  const store = openEmbedded(join(dir, 'ds.db'));
  const put = (kind: string, name: string, spec: Record<string, unknown>, meta: Record<string, unknown> = {}) =>
    store.create(resourceKey(kind, name, meta.namespace as string | undefined), JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind, metadata: { name, ...meta }, spec }));
  try {
    for (const [pod, ip] of [['a', '10.9.0.1'], ['b', '10.9.0.2']]) {
      await put(
        'WorkloadEndpoint',
        `n1-k8s-${pod}-eth0`,
        { node: 'n1', orchestrator: 'k8s', pod, endpoint: 'eth0', interfaceName: `cali${pod}`, ipNetworks: [`${ip}/32`], profiles: ['kns.x'] },
        { namespace: 'x', labels: { app: pod, 'projectcalico.org/namespace': 'x', 'projectcalico.org/orchestrator': 'k8s' } },
      );
    }
    await put('Profile', 'kns.x', { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] });
    await put('GlobalNetworkPolicy', 'untracked-deny', { doNotTrack: true, applyOnForward: true, selector: 'all()', ingress: [{ action: 'Deny' }], types: ['Ingress'] });
    await put('GlobalNetworkPolicy', 'prednat-deny', { preDNAT: true, applyOnForward: true, selector: 'all()', ingress: [{ action: 'Deny' }], types: ['Ingress'] });
    const flow = { src: 'x/a', dst: 'x/b', protocol: 'TCP' as const, port: 80 };
    const m = await modelFromStore(store);
    assert.deepEqual(m.policies.map((p) => p.metadata.name), []);
    assert.equal(verdict(m, flow).allowed, true);

    // applyOnForward alone: a normal policy for pods.
    await put('GlobalNetworkPolicy', 'forward-deny', { applyOnForward: true, selector: "app == 'b'", ingress: [{ action: 'Deny' }], types: ['Ingress'] });
    const m2 = await modelFromStore(store);
    assert.deepEqual(m2.policies.map((p) => p.metadata.name), ['forward-deny']);
    const v = verdict(m2, flow);
    assert.equal(v.allowed, false);
    assert.equal(v.ingress.policy, 'forward-deny');
  } finally {
    await store.close();
  }
  assert.equal(appliesToWorkloads({ apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy', metadata: { name: 'p' }, spec: { preDNAT: true } }), true, 'only GlobalNetworkPolicy has the flags');
});
