// FelixConfiguration fields stored before Tortie refused them (by Calico), or that Tortie does not
// put in force: the agent's start-up logs each once and lists them on its Node
// (status.tortie.unsupportedSettings); the ones in force or matching Tortie's behaviour are quiet.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbedded } from '../../libcalico-go/lib/backend/embedded/embedded.js';
import { resourceKey } from '../../libcalico-go/lib/backend/keys.js';
import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';
import { ResourceClient } from '../../libcalico-go/lib/clientv3/resources.js';
import { parseIpAddrJson } from './autodetect.js';
import { parseAgentConfig } from './config.js';
import { createLogger } from '../../libcalico-go/lib/logutils/index.js';
import { findUnsupportedFelixSettings, runStartup } from './startup.js';

const dir = mkdtempSync(join(tmpdir(), 'tortie-stored-felix-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const fc = (name: string, spec: Record<string, unknown>): Resource => ({ apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name }, spec });

test('findUnsupportedFelixSettings: this node and default only; refused, unsupported and in-force fields', () => {
  const found = findUnsupportedFelixSettings(
    [
      fc('default', {
        wireguardEnabled: true,
        defaultEndpointToHostAction: 'Drop',
        bpfLogLevel: '',
        floatingIPs: 'Disabled',
        reportingInterval: '0s',
        chainInsertMode: 'Append',
        healthPort: 9099,
      }),
      fc('node.n1', { bpfEnabled: false, failsafeInboundHostPorts: [{ protocol: 'TCP', port: 22 }] }),
      fc('node.other', { chainInsertMode: 'Append' }),
    ],
    'n1',
  );
  assert.deepEqual(
    found.map((u) => u.message),
    [
      'FelixConfiguration node.n1 spec.failsafeInboundHostPorts [{"protocol":"TCP","port":22}]: not supported by Tortie (host endpoints are not enforced by Tortie, so failsafe ports have no meaning); ignored',
      'FelixConfiguration default spec.chainInsertMode "Append": not supported by Tortie (Tortie keeps its rules in nftables tables of its own); ignored',
      'FelixConfiguration default spec.healthPort 9099: not supported by Tortie (tortie-node reads it only from its environment, as FELIX_HEALTHPORT); ignored',
      'FelixConfiguration default spec.wireguardEnabled true: not supported by Tortie (Tortie has no WireGuard encryption (and this kernel has no WireGuard), ' +
        'so pod traffic would cross the network unencrypted); not in force (Tortie refuses it at apply; this one was stored before)',
    ],
  );
  assert.deepEqual(
    found.map((u) => u.refused),
    [false, false, false, true],
  );
});

test('start-up logs each stored unsupported FelixConfiguration field once and lists them on the Node', async () => {
  const dsPath = join(dir, 'ds.db');
  const store = openEmbedded(dsPath);
  try {
    // As Calico would have stored it (validation, which now refuses wireguardEnabled true, is skipped).
    await store.create(resourceKey('FelixConfiguration', 'default'), JSON.stringify(fc('default', { wireguardEnabled: true, logSeverityScreen: 'Info', floatingIPs: 'Disabled' })));
    const cfg = parseAgentConfig({ NODENAME: 'n1', IP: '10.0.0.21/16', DATASTORE_PATH: dsPath, TORTIE_STATE_DIR: join(dir, 'state') });
    const lines: string[] = [];
    const ifaces = parseIpAddrJson(JSON.stringify([{ ifindex: 2, ifname: 'eth0', mtu: 1500, operstate: 'UP', addr_info: [{ family: 'inet', local: '10.0.0.21', prefixlen: 16 }] }]));
    const r = await runStartup(store, cfg, { log: createLogger('startup.ts', { sink: (l) => lines.push(l), level: 'INFO' }), interfaces: async () => ifaces, version: 'v0' });
    const warned = lines.filter((l) => l.includes('spec.'));
    assert.equal(warned.length, 2, lines.join('\n'));
    assert.match(warned.find((l) => l.includes('wireguardEnabled'))!, /WARNING.*FelixConfiguration default spec\.wireguardEnabled true: not supported by Tortie \(Tortie has no WireGuard/);
    assert.match(warned.find((l) => l.includes('logSeverityScreen'))!, /spec\.logSeverityScreen "Info": not supported by Tortie \(tortie-node reads it only from its environment, as FELIX_LOGSEVERITYSCREEN\); ignored/);
    assert.equal(r.unsupported.length, 2);
    const node = await new ResourceClient(store).get('Node', 'n1');
    assert.deepEqual((node!.status as { tortie: { unsupportedSettings: string[] } }).tortie.unsupportedSettings, r.unsupported.map((u) => u.message));

    // Removed from the store: the next start-up clears the Node's list.
    await store.delete(resourceKey('FelixConfiguration', 'default'));
    const r2 = await runStartup(store, cfg, { log: createLogger('startup.ts', { sink: () => undefined }), interfaces: async () => ifaces, version: 'v0' });
    assert.deepEqual(r2.unsupported, []);
    const node2 = await new ResourceClient(store).get('Node', 'n1');
    assert.equal((node2!.status as { tortie?: { unsupportedSettings?: unknown } } | undefined)?.tortie?.unsupportedSettings, undefined);
  } finally {
    await store.close();
  }
});
