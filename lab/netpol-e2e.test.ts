// The upstream Kubernetes NetworkPolicy e2e suite (test/e2e/network/netpol of Kubernetes v1.34.4,
// written by others; the e2e.test binary built by scripts/build-kubernetes.sh) against Tortie in a
// real lab cluster: `tortie-lab up --kubernetes --nodes 2 --cni tortie`, then `tortie-lab e2e` with a
// representative subset — ingress, egress, namespace selectors, named and numbered ports, ipBlock with
// except, UDP, policy deletion. Every spec builds the suite's model (namespaces x, y, z; pods a, b, c
// serving 80 and 81 over TCP and UDP), applies its policies with the API and probes all 81 pairs with
// `agnhost connect` from inside the pods: real packets, the suite's own expectations. Each must pass.
// The whole suite is `tortie-lab e2e <lab>` (docs/conformance.md).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingForKube } from './pkg/kube/cluster.js';
import { e2eBinaries, type E2ESummary } from './pkg/e2e.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const LAB = join(ROOT, 'bin', 'tortie-lab');
const missing = [...missingForKube('tortie'), ...Object.values(e2eBinaries()).filter((f) => !existsSync(f))];
const skip =
  process.getuid?.() !== 0
    ? 'needs root (namespaces, cgroups)'
    : !existsSync(LAB)
      ? `${LAB} not built (npm run build)`
      : missing.length > 0
        ? `needs the Kubernetes build and images (scripts/build-kubernetes.sh, scripts/build-images.sh): ${missing.join(', ')} not built`
        : false;

/** The subset: the specs' full names after "[sig-network] " (each ends with " [Feature:NetworkPolicy]"). */
export const SUBSET = [
  "Netpol NetworkPolicy between server and client should support a 'default-deny-ingress' policy",
  'Netpol NetworkPolicy between server and client should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector',
  'Netpol NetworkPolicy between server and client should enforce policy based on PodSelector and NamespaceSelector',
  'Netpol NetworkPolicy between server and client should allow ingress access on one named port',
  'Netpol NetworkPolicy between server and client should deny egress from pods based on PodSelector',
  'Netpol NetworkPolicy between server and client should enforce except clause while egress access to server in CIDR block',
  'Netpol NetworkPolicy between server and client should enforce policy based on Ports',
  'Netpol NetworkPolicy between server and client should stop enforcing policies after they are deleted',
  'Netpol [LinuxOnly] NetworkPolicy between server and client using UDP should enforce policy based on Ports',
];

function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export const SUBSET_FOCUS = SUBSET.map((n) => `\\[sig-network\\] ${reEscape(n)} \\[Feature:NetworkPolicy\\]`).join('|');

const dir = mkdtempSync(join(tmpdir(), 'tortie-netpol-e2e-'));
const env = { ...process.env, TORTIE_LAB_DIR: dir };
const name = `np${randomBytes(3).toString('hex')}`;

function lab(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(LAB, args, { env, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('upstream NetworkPolicy e2e subset on Tortie', { skip }, () => {
  let up = false;
  before(async () => {
    const r = await lab(['up', '--kubernetes', '--name', name, '--nodes', '2', '--cni', 'tortie'], 300_000);
    assert.equal(r.code, 0, `up → ${r.code}\n${r.stdout}\n${r.stderr}`);
    up = true;
  });
  after(async () => {
    if (up || existsSync(join(dir, name))) await lab(['down', name], 180_000);
    rmSync(dir, { recursive: true, force: true });
  });

  it(`${SUBSET.length} specs of test/e2e/network/netpol pass`, { timeout: 20 * 60_000 }, async () => {
    const report = join(dir, 'report');
    const r = await lab(['e2e', name, '--focus', SUBSET_FOCUS, '--report-dir', report], 19 * 60_000);
    const summary = JSON.parse(readFileSync(join(report, 'summary.json'), 'utf8')) as E2ESummary;
    const log = `${r.stdout}\n${r.stderr}`;
    assert.deepEqual(
      summary.failed.map((f) => `${f.name}: ${f.message}`),
      [],
      log,
    );
    // The names the suite ran are exactly the subset: a renamed spec would otherwise pass unnoticed.
    assert.deepEqual(summary.passed.map((p) => p.name.replace(/^\[sig-network\] /, '').replace(/ \[Feature:NetworkPolicy\]$/, '')).sort(), [...SUBSET].sort(), log);
    assert.deepEqual(summary.skipped, []);
    assert.equal(r.code, 0, log);
  });
});
