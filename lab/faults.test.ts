// Each fault `tortie-lab break` injects is found by `tortiectl cluster check`, alone, and gone
// after `tortie-lab heal` (root only; one 3-node lab in its own tl-<unique>-* namespaces, state in a
// temporary TORTIE_LAB_DIR, `down` in after). For every fault: break → check reports exactly that
// finding kind (and nothing else) → heal → check is clean (exit 0). The agents write their
// CalicoNodeStatus every second here (spec.updatePeriodSeconds 1) and the check counts events of
// the last 15 s (--window), so that a healed event-like fault (restarts, a route that moved) ages
// out within the test.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAULTS, FAULT_FINDING } from './pkg/faults.js';
import type { LabState } from './pkg/state.js';
import { netnsList, pidAlive } from './pkg/sys.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const LAB = join(ROOT, 'bin', 'tortie-lab');
const WINDOW = '15s';
const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : !existsSync(LAB) ? 'bin/tortie-lab not built (npm run build)' : false;

function run(env: NodeJS.ProcessEnv, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(LAB, args, { env, timeout: 180_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

interface Check {
  code: number;
  kinds: string[];
  text: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('tortie-lab break/heal and tortiectl cluster check', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-faults-test-'));
  const env = { ...process.env, TORTIE_LAB_DIR: dir };
  const name = `f${randomBytes(3).toString('hex')}`;
  const lab = (...args: string[]) => run(env, args);
  const ok = async (...args: string[]) => {
    const r = await lab(...args);
    assert.equal(r.code, 0, `tortie-lab ${args.join(' ')} → ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const state = () => JSON.parse(readFileSync(join(dir, name, 'state.json'), 'utf8')) as LabState;
  let last: LabState | undefined;

  const check = async (): Promise<Check> => {
    const r = await lab('ctl', name, '--no-wait', '--', 'cluster', 'check', '-o', 'json', '--window', WINDOW);
    assert.ok(r.code === 0 || r.code === 1, `cluster check → ${r.code}\n${r.stdout}\n${r.stderr}`);
    const doc = JSON.parse(r.stdout) as { healthy: boolean; findings: { kind: string }[] };
    assert.equal(doc.healthy, r.code === 0, 'exit 0 exactly when healthy');
    return { code: r.code, kinds: [...new Set(doc.findings.map((f) => f.kind))].sort(), text: r.stdout };
  };
  /** Polls the check until `want` holds (the agents report every second); fails with the last answer. */
  const until = async (what: string, want: (c: Check) => boolean, timeoutMs: number): Promise<Check> => {
    const deadline = Date.now() + timeoutMs;
    let c = await check();
    while (!want(c) && Date.now() < deadline) {
      await sleep(1000);
      c = await check();
    }
    assert.ok(want(c), `${what} within ${timeoutMs / 1000}s; last cluster check:\n${c.text}`);
    return c;
  };

  before(async () => {
    await ok('up', '--name', name, '--nodes', '3');
    // Blocks on node1 and node2 (route-flap has node3 claim node1's).
    await ok('pod', 'add', name, 'node1', 'default/a', '--serve', '80');
    await ok('pod', 'add', name, 'node2', 'default/b', '--serve', '80');
    for (const n of ['node1', 'node2', 'node3']) {
      await ok('ctl', name, '--no-wait', '--', 'patch', 'caliconodestatus', n, '-p', '{"spec":{"updatePeriodSeconds":1}}');
    }
  });

  after(async () => {
    if (existsSync(join(dir, name, 'state.json'))) {
      last = state();
      await lab('down', name);
    }
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(netnsList().filter((n) => n.startsWith(`tl-${name}-`)), [], 'no namespace left');
    for (const p of last?.processes ?? []) assert.equal(pidAlive(p.pid, p.startTime), false, `${p.role} (PID ${p.pid}) still running`);
  });

  it('a healthy lab: no findings, exit 0', async () => {
    await until('a clean check', (c) => c.code === 0, 30_000);
  });

  for (const fault of FAULTS) {
    it(`${fault}: found alone as ${FAULT_FINDING[fault]}, then healed`, async () => {
      const t0 = Date.now();
      assert.match(await ok('break', name, fault), new RegExp(`broke ${fault}: node3`));
      const kind = FAULT_FINDING[fault];
      await until(`exactly a ${kind} finding`, (c) => c.code === 1 && c.kinds.length === 1 && c.kinds[0] === kind, 30_000);
      // heal refuses what is not broken; break refuses twice.
      assert.equal((await lab('break', name, fault)).code, 1);
      await ok('heal', name, fault);
      assert.equal((await lab('heal', name, fault)).code, 1);
      await until('a clean check after heal', (c) => c.code === 0 && c.kinds.length === 0, 60_000);
      process.stdout.write(`# ${fault}: ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
    });
  }
});
