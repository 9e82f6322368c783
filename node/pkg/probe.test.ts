// The DaemonSet's exec probes: flags as calico-node takes them, Felix's checks asking a running
// health server (the agent's own, node/pkg/health.ts), BIRD's asking a control socket that answers
// as BIRD 2 does (a socket server of this test speaking BIRD's reply format), readiness by Calico's
// rules (every session Established while young, one afterwards, none configured = ready).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAgentConfig } from './config.js';
import { HealthAggregator, startHealthServer } from './health.js';
import { parseProbeArgs, probeMessage, runProbes } from './probe.js';

describe('parseProbeArgs', () => {
  it("takes calico-node's flags (one or two dashes), -threshold-time, and refuses anything else", () => {
    assert.deepEqual(parseProbeArgs(['-felix-live', '-bird-live']), { checks: ['-felix-live', '-bird-live'], thresholdS: 30 });
    assert.deepEqual(parseProbeArgs(['--felix-ready', '-bird-ready', '-threshold-time', '5s']), { checks: ['-felix-ready', '-bird-ready'], thresholdS: 5 });
    assert.equal(parseProbeArgs([]), undefined);
    assert.throws(() => parseProbeArgs(['-felix-live', '-shutdown']), /unknown argument "-shutdown"/);
    assert.throws(() => parseProbeArgs(['-bird-ready', '-threshold-time=soon']), /-threshold-time "soon"/);
  });
});

describe('runProbes against a running health server and a BIRD control socket', () => {
  let dir: string;
  let bird: Server;
  let protocols = '';
  const health = new HealthAggregator();
  const reporter = health.register('policy');
  let close: () => Promise<void>;
  let port = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-probe-'));
    bird = createServer((c) => {
      c.write('0001 BIRD 2.0.12 ready.\n');
      let buf = '';
      c.on('data', (d) => {
        buf += d;
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          const cmd = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (cmd === 'show status') c.write('1000-BIRD 2.0.12\n1011-Router ID is 10.0.0.11\n 0013 Daemon is up and running\n0013 Daemon is up and running\n');
          else if (cmd === 'show protocols') c.write(protocols);
          else c.write('9001 syntax error\n');
        }
      });
      c.on('error', () => undefined);
    });
    await new Promise<void>((r) => bird.listen(join(dir, 'bird.ctl'), r));
    const s = await startHealthServer(health, '127.0.0.1', 0);
    port = s.address.port;
    close = s.close;
  });
  after(async () => {
    await close?.();
    await new Promise((r) => bird.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const cfg = () =>
    parseAgentConfig({ NODENAME: 'worker01', FELIX_HEALTHENABLED: 'true', FELIX_HEALTHHOST: '127.0.0.1', FELIX_HEALTHPORT: String(port), TORTIE_RUN_DIR: dir, TORTIE_STATE_DIR: dir });
  const rows = (...r: string[]) =>
    ['2002-Name       Proto      Table      State  Since         Info', '1002-device1    Device     ---        up     10:00:00.000', ...r.map((x) => ` ${x}`), '0000 ', ''].join('\n');

  it('felix: 503 from the agent → not ready, with its reporter table; 200 → ready', async () => {
    reporter.report({ live: true, ready: false, detail: 'nft failed' });
    const args = parseProbeArgs(['-felix-ready'])!;
    const f = await runProbes(args, cfg());
    assert.equal(f.length, 1);
    assert.match(probeMessage(args, f), /^tortie-node is not ready: felix is not ready: readiness probe reporting 503\n[\s\S]*policy .*nft failed/);
    reporter.report({ ready: true });
    assert.deepEqual(await runProbes(args, cfg()), []);
    assert.deepEqual(await runProbes(parseProbeArgs(['-felix-live'])!, cfg()), []);
  });

  it('felix: nothing listening → not live, naming the address', async () => {
    const c = { ...cfg(), felix: { ...cfg().felix, healthPort: 1 } };
    const f = await runProbes(parseProbeArgs(['-felix-live'])!, c);
    assert.match(f[0]!, /^felix is not live: Get "http:\/\/127\.0\.0\.1:1\/liveness": connect ECONNREFUSED/);
  });

  it('bird-live: BIRD answers show status; no socket → not live', async () => {
    assert.deepEqual(await runProbes(parseProbeArgs(['-bird-live'])!, cfg()), []);
    const other = { ...cfg(), runDir: join(dir, 'nowhere') };
    const f = await runProbes(parseProbeArgs(['-bird-live'])!, other);
    assert.match(f[0]!, /^BIRD is not live: cannot talk to BIRD on .*nowhere\/bird\.ctl/);
  });

  it("bird-ready: Calico's rules — every session up while the agent is young, one afterwards, none = ready", async () => {
    const args = parseProbeArgs(['-bird-ready'])!;
    const nodename = join(dir, 'nodename');
    writeFileSync(nodename, 'worker01');
    protocols = rows();
    assert.deepEqual(await runProbes(args, cfg()), [], 'no BGP session configured: ready');
    protocols = rows('Mesh_10_0_0_2 BGP        ---        up     10:00:01.000  Established', 'Mesh_10_0_0_3 BGP        ---        start  10:00:01.000  Active        Socket: Connection refused');
    const young = await runProbes(args, cfg());
    assert.deepEqual(young, ['BIRD is not ready: BGP not established with Mesh_10_0_0_3']);
    const old = (Date.now() - 120_000) / 1000;
    utimesSync(nodename, old, old);
    assert.deepEqual(await runProbes(args, cfg()), [], 'after the threshold one Established session suffices');
    protocols = rows('Mesh_10_0_0_2 BGP        ---        start  10:00:01.000  Connect', 'Mesh_10_0_0_3 BGP        ---        start  10:00:01.000  Active');
    assert.deepEqual(await runProbes(args, cfg()), ['BIRD is not ready: BGP not established with Mesh_10_0_0_2,Mesh_10_0_0_3']);
  });
});
