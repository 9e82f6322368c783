// BGP passwords in the routing plan: a peer whose secretKeyRef cannot be resolved is left out with
// a problem (logged and written to the Node's status.tortie.problems by the loop); BIRD still gets
// a configuration with every other peer. Before, one such peer left the node without BIRD config.
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Resource } from '../../../libcalico-go/lib/apis/v3/resource.js';
import { fileSecretResolver } from '../../../confd/pkg/secrets.js';
import { planRouting, type RoutingSnapshot } from './plan.js';

const r = (kind: string, name: string, spec: Record<string, unknown>): Resource => ({ apiVersion: 'projectcalico.org/v3', kind, metadata: { name }, spec });
const dir = mkdtempSync(join(tmpdir(), 'tortie-plan-secrets-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const snap: RoutingSnapshot = {
  nodeName: 'n1',
  nodes: [r('Node', 'n1', { bgp: { ipv4Address: '10.0.0.11/24' } }), r('Node', 'n2', { bgp: { ipv4Address: '10.0.0.12/24' } })],
  ipPools: [r('IPPool', 'p', { cidr: '10.233.64.0/18', blockSize: 24 })],
  bgpConfigurations: [],
  bgpPeers: [
    r('BGPPeer', 'tor-a', { peerIP: '10.0.0.1', asNumber: 65001, password: { secretKeyRef: { name: 'bgp', key: 'tor-a' } } }),
    r('BGPPeer', 'tor-b', { peerIP: '10.0.0.2', asNumber: 65001, password: { secretKeyRef: { name: 'bgp', key: 'tor-b' } } }),
  ],
  blocks: [],
  affinities: [],
};

it('a peer whose password cannot be resolved is a problem; BIRD is configured with the others', () => {
  mkdirSync(join(dir, 'bgp'));
  writeFileSync(join(dir, 'bgp', 'tor-a'), 'secret-a');
  const plan = planRouting(snap, { backend: 'bird', socketDir: dir, secrets: fileSecretResolver(dir) });
  assert.ok(plan.birdConfig, plan.problems.join('\n'));
  assert.match(plan.birdConfig!, /protocol bgp Global_10_0_0_1 from bgp_peer_v4 \{[^}]*password "secret-a";/);
  assert.match(plan.birdConfig!, /protocol bgp Mesh_10_0_0_12 /);
  assert.doesNotMatch(plan.birdConfig!, /Global_10_0_0_2/);
  assert.deepEqual(plan.problems, [
    `BGPPeer tor-b: password secret "bgp" key "tor-b" could not be resolved (no file ${join(dir, 'bgp', 'tor-b')} (TORTIE_BGP_SECRETS_DIR=${dir})); ` +
      'its peerings are left out of the BIRD configuration (the other peers are not affected)',
  ]);
});

it('without TORTIE_BGP_SECRETS_DIR: both peers left out, saying the variable is not set; the mesh stays', () => {
  const plan = planRouting(snap, { backend: 'bird', socketDir: dir, secrets: fileSecretResolver(undefined) });
  assert.ok(plan.birdConfig);
  assert.match(plan.birdConfig!, /protocol bgp Mesh_10_0_0_12 /);
  assert.doesNotMatch(plan.birdConfig!, /Global_/);
  assert.equal(plan.problems.length, 2);
  for (const p of plan.problems) assert.match(p, /could not be resolved \(TORTIE_BGP_SECRETS_DIR is not set, so tortie-node has no secrets to read\)/);
});
