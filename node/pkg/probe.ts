// `tortie-node -felix-live -bird-live` / `-felix-ready -bird-ready`: the DaemonSet's exec probes,
// as calico-node's (node/pkg/health/health.go). They ask the running agent, never themselves:
// * felix-live / felix-ready: GET http://<FELIX_HEALTHHOST>:<FELIX_HEALTHPORT>/liveness | /readiness
//   of the agent (200 = good; the agent's reporter table is shown otherwise).
// * bird-live: BIRD answers `show status` on the agent's control socket ($TORTIE_RUN_DIR/bird.ctl)
//   with a status starting "BIRD".
// * bird-ready: BIRD is live and its BGP sessions are up: while the agent started less than
//   `-threshold-time` (30 s) ago (the nodename file's age) every session must be Established,
//   afterwards one Established session suffices; no sessions at all is ready (Calico's rules).
// Exit 0 when every asked check passes; else exit 1 with Calico's message shape,
// `tortie-node is not ready: BIRD is not ready: BGP not established with <peers>`.
import { request } from 'node:http';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { bgpNotEstablished, birdCommand, parseBirdShowProtocols } from '../../confd/pkg/index.js';
import type { AgentConfig } from './config.js';

export const PROBE_FLAGS = ['-felix-live', '-felix-ready', '-bird-live', '-bird-ready'] as const;
export type ProbeFlag = (typeof PROBE_FLAGS)[number];

export interface ProbeArgs {
  checks: ProbeFlag[];
  thresholdS: number;
}

/** Parses the probe flags (Go flag style: `-x` or `--x`); undefined when argv asks for no probe. */
export function parseProbeArgs(argv: readonly string[]): ProbeArgs | undefined {
  const checks: ProbeFlag[] = [];
  let thresholdS = 30;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!.replace(/^--/, '-');
    if ((PROBE_FLAGS as readonly string[]).includes(a)) {
      if (!checks.includes(a as ProbeFlag)) checks.push(a as ProbeFlag);
    } else if (a === '-threshold-time' || a.startsWith('-threshold-time=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      const m = /^(\d+)s?$/.exec(v ?? '');
      if (!m) throw new Error(`-threshold-time ${JSON.stringify(v)}: expected seconds, e.g. 30s`);
      thresholdS = Number(m[1]);
    } else {
      throw new Error(`unknown argument ${JSON.stringify(argv[i])} (probe flags: ${PROBE_FLAGS.join(' ')}, -threshold-time)`);
    }
  }
  return checks.length ? { checks, thresholdS } : undefined;
}

function httpStatus(host: string, port: number, path: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: host === '' ? 'localhost' : host, port, path, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Runs the checks; resolves with the failure messages ([] = all good). */
export async function runProbes(args: ProbeArgs, config: AgentConfig, now = Date.now()): Promise<string[]> {
  const failures: string[] = [];
  const f = config.felix;
  for (const c of args.checks) {
    if (c === '-felix-live' || c === '-felix-ready') {
      const what = c === '-felix-live' ? 'live' : 'ready';
      if (!f.healthEnabled) {
        failures.push(`felix is not ${what}: the agent's health endpoint is off (FELIX_HEALTHENABLED=true turns it on)`);
        continue;
      }
      try {
        const r = await httpStatus(f.healthHost, f.healthPort, what === 'live' ? '/liveness' : '/readiness', 5000);
        if (r.status !== 200) failures.push(`felix is not ${what}: ${what === 'live' ? 'liveness' : 'readiness'} probe reporting ${r.status}\n${r.body.trim()}`);
      } catch (e) {
        failures.push(`felix is not ${what}: Get "http://${f.healthHost}:${f.healthPort}/${what === 'live' ? 'liveness' : 'readiness'}": ${(e as Error).message}`);
      }
      continue;
    }
    const socket = join(config.runDir, 'bird.ctl');
    try {
      const status = await birdCommand(socket, 'show status', { timeoutMs: 3000 });
      if (!status.text.startsWith('BIRD')) {
        failures.push(`BIRD is not ${c === '-bird-live' ? 'live' : 'ready'}: unexpected status ${JSON.stringify(status.text.split('\n')[0])}`);
        continue;
      }
    } catch (e) {
      failures.push(`BIRD is not ${c === '-bird-live' ? 'live' : 'ready'}: cannot talk to BIRD on ${socket}: ${(e as Error).message}`);
      continue;
    }
    if (c === '-bird-ready') {
      try {
        const rows = parseBirdShowProtocols((await birdCommand(socket, 'show protocols', { timeoutMs: 3000 })).raw);
        const bgp = rows.filter((r) => r.proto.toLowerCase() === 'bgp');
        const down = bgpNotEstablished(rows);
        let young = false;
        try {
          young = now - statSync(config.nodenameFile).mtimeMs < args.thresholdS * 1000;
        } catch {
          young = true; // the agent has not finished starting
        }
        const ok = bgp.length === 0 || (young ? down.length === 0 : down.length < bgp.length);
        if (!ok) failures.push(`BIRD is not ready: BGP not established with ${down.map((d) => d.name).join(',')}`);
      } catch (e) {
        failures.push(`BIRD is not ready: ${(e as Error).message}`);
      }
    }
  }
  return failures;
}

/** The exit message for failures (Calico: `calico/node is not ready: …`). */
export function probeMessage(args: ProbeArgs, failures: readonly string[]): string {
  const live = args.checks.every((c) => c.endsWith('-live'));
  return `tortie-node is not ${live ? 'live' : 'ready'}: ${failures.join('; ')}`;
}
