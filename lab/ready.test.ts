// When `tortie-lab up` and `pod add` return, the network works: the seed's five nodes, one pod on
// each, and the first probe answers 20/20 — every time (several fresh labs, BGP and VXLAN), with
// no retry and no sleep. Also: a node whose readiness cannot come exits 1 naming it and why.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { notReadyReporters, parseDuration, parseProcRoutes, routesTo } from './pkg/readiness.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const LAB = join(ROOT, 'bin', 'tortie-lab');
const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : !existsSync(LAB) ? `${LAB} not built (npm run build)` : false;
const dir = mkdtempSync(join(tmpdir(), 'tortie-ready-test-'));
const env = { ...process.env, TORTIE_LAB_DIR: dir };
const made: string[] = [];

function lab(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(LAB, args, { env, timeout: 240_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(...args: string[]): Promise<string> {
  const r = await lab(...args);
  assert.equal(r.code, 0, `tortie-lab ${args.join(' ')} → ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const NODES = ['master01', 'master02', 'master03', 'worker01', 'worker02'];

describe('readiness helpers', () => {
  it('reads /proc/<pid>/net/route and decides whether a pod address is routed', () => {
    // Default via the underlay, the underlay subnet, a block via BGP, a local blackhole.
    const text = [
      'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT',
      'eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0',
      'eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
      'eth0\t0040E90A\t0C00000A\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0',
      '*\t0041E90A\t00000000\t0201\t0\t0\t0\t00FFFFFF\t0\t0\t0',
    ].join('\n');
    const routes = parseProcRoutes(text);
    assert.equal(routes.length, 4);
    assert.equal(routesTo(routes, '10.233.64.7'), true, 'block route via another node');
    assert.equal(routesTo(routes, '10.233.65.7'), false, 'a blackhole is not a route');
    assert.equal(routesTo(routes, '10.233.66.7'), false, 'only the default route covers it');
  });

  it('durations and not-ready reporters', () => {
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('3'), 3000);
    assert.equal(parseDuration('3 minutes'), null);
    const body = JSON.stringify({
      reporters: [
        { name: 'routes', reportsReady: true, ready: false, detail: 'BGP not established with 10.0.0.12 (Connect)' },
        { name: 'policy', reportsReady: true, ready: true, detail: '' },
        { name: 'startup', reportsReady: true, ready: false, detail: '' },
      ],
    });
    assert.deepEqual(notReadyReporters(body), ['routes (BGP not established with 10.0.0.12 (Connect))', 'startup']);
  });
});

describe('tortie-lab returns only when things work', { skip }, () => {
  after(async () => {
    for (const n of made) if (existsSync(join(dir, n, 'state.json'))) await lab('down', n);
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [mode, rounds] of [['bgp', 3], ['vxlan', 2]] as const) {
    it(`${mode}: up --preset seed, a pod on each node, then the first probe answers 20/20 (${rounds} fresh labs)`, async () => {
      for (let round = 0; round < rounds; round++) {
        const name = `r${randomBytes(3).toString('hex')}`;
        made.push(name);
        const upOut = await ok('up', '--name', name, '--preset', 'seed', '--mode', mode);
        assert.match(upOut, /every tortie-node reports ready/);
        if (mode === 'bgp') {
          // Right when up returned: every node's four mesh sessions are Established.
          for (const n of NODES) {
            const st = await ok('ctl', name, '--node', n, '--', 'node', 'status');
            assert.equal(st.match(/Established/g)?.length ?? 0, 4, `round ${round}, ${n} right after up:\n${st}`);
          }
        }
        for (const [i, n] of NODES.entries()) {
          const out = await ok('pod', 'add', name, n, `default/web-${i}`, '--serve', '80');
          const ip = /: (10\.233\.\d+\.\d+) \(/.exec(out)?.[1];
          assert.ok(ip, out);
          // Right when pod add returned: every other node routes the pod's address to its node.
          for (const [j, other] of NODES.entries()) {
            if (j === i) continue;
            const via = await ok('exec', name, other, '--', 'ip', 'route', 'get', ip);
            const want = mode === 'bgp' ? new RegExp(`via 10\\.0\\.0\\.${11 + i} dev eth0`) : /dev vxlan\.calico/;
            assert.match(via, want, `round ${round}: ${other} right after pod add of ${ip} on ${n}`);
          }
        }
        const r = await lab('probe', name, '--port', '80', '--json');
        const matrix = JSON.parse(r.stdout) as Record<string, Record<string, boolean>>;
        const pairs = Object.values(matrix).flatMap((row) => Object.values(row));
        const answered = pairs.filter((x) => x === true).length;
        assert.equal(`${answered}/${pairs.length}`, '20/20', `round ${round}: first probe\n${r.stdout}`);
        if (round === 0) {
          // A write through ctl returns when every node enforces it: deny all, then allow again.
          const file = join(dir, `${name}-deny.yaml`);
          writeFileSync(file, 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: default}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n');
          await ok('ctl', name, '--', 'apply', '-f', file);
          const denied = await lab('probe', name, '--port', '80', '--json', '--timeout', '300');
          const after = Object.values(JSON.parse(denied.stdout) as Record<string, Record<string, boolean>>).flatMap((row) => Object.values(row));
          assert.equal(after.filter((x) => x).length, 0, `right after ctl apply of a default deny:\n${denied.stdout}`);
          await ok('ctl', name, '--', 'delete', 'networkpolicy', 'knp.default.deny-all', '-n', 'default');
          const again = await lab('probe', name, '--port', '80', '--json');
          const back = Object.values(JSON.parse(again.stdout) as Record<string, Record<string, boolean>>).flatMap((row) => Object.values(row));
          assert.equal(back.filter((x) => x).length, 20, `right after ctl delete:\n${again.stdout}`);
        }
        await ok('down', name);
      }
    });
  }

  it('a node that cannot become ready: up exits 1 naming it and what is missing', async () => {
    const name = `r${randomBytes(3).toString('hex')}`;
    made.push(name);
    await ok('up', '--name', name, '--nodes', '2', '--no-wait');
    // Stop BIRD's peer on one node: cut its underlay link, then ask the other node to restart.
    await ok('exec', name, 'node2', '--', 'ip', 'link', 'set', 'eth0', 'down');
    const r = await lab('node', 'restart', name, 'node1', '--wait', '8s');
    assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /not ready after 8s/);
    assert.match(r.stderr, /node1: .*routes \(BGP not established with 10\.\d+\.\d+\.\d+/);
    await ok('down', name);
  });
});
