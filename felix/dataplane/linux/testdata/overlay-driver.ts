// Test driver: runs overlay/vxlan (and podnet) operations in the namespace it is started in — the tests
// start it with `ip netns exec <node-ns> /usr/bin/node overlay-driver.js '<json>'` — and prints one
// JSON line. The code under test therefore cannot reach the root namespace.
//
// Request: one op or an array of ops, each
//   {op: "kernel"}                                  configureKernel (ip_forward=1)
//   {op: "wire", spec}                              podnet.wirePod
//   {op: "ensure", spec} | {op: "remove"}           ensureVxlanDevice / removeVxlanDevice
//   {op: "reconcile", input, options}               one reconcile pass
//   {op: "bench", input, options, n}                timings (see benchOp)
// Answer: an array of {ok: true, value, ms, execs} | {ok: false, error: {name, message}, ms}.
//
// Serve mode: `overlay-driver.js serve '<{input, options, intervalMs}>'` runs a Reconciler, prints
// "ready" and then one JSON line per pass that changed something or failed, until stdin closes.

import { writeSync } from 'node:fs';
import { IpRoute, spawnExec, type Exec } from '../iproute.js';
import { configureKernel } from '../kernel.js';
import { computeDesired, diffState, type OverlayInput } from '../routes.js';
import { readKernel, reconcile, Reconciler, type ReconcileOptions } from '../overlay.js';
import { ensureVxlanDevice, removeVxlanDevice, type VxlanDeviceSpec } from '../vxlan.js';
import { wirePod } from '../podnet.js';
import { runDriver } from './driver-main.js';

let execs = 0;
const real = spawnExec();
const counting: Exec = (file, args, input) => {
  execs++;
  return real(file, args, input);
};
const ip = new IpRoute(counting);

type Op = { op: string; [k: string]: unknown };

function stats(xs: number[]): { n: number; min: number; median: number; p90: number; max: number; mean: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { n: s.length, min: r(s[0]), median: r(q(0.5)), p90: r(q(0.9)), max: r(s[s.length - 1]), mean: r(s.reduce((a, b) => a + b, 0) / s.length) };
}

/**
 * With the device in place: n × (pure desired+diff against an empty and a full kernel state;
 * reconcile from nothing; reconcile with nothing to do; repair of one deleted route; teardown to an
 * empty desired state).
 */
async function benchOp(input: OverlayInput, options: ReconcileOptions, n: number): Promise<unknown> {
  const opts = { ...options, ip };
  const empty: OverlayInput = { ...input, vteps: [], remoteBlocks: [], localBlocks: [] };
  await reconcile(empty, opts);
  const snapFull = await (async () => {
    await reconcile(input, opts);
    return readKernel({ ip });
  })();
  await reconcile(empty, opts);
  const snapEmpty = await readKernel({ ip });
  const pureEmpty: number[] = [];
  const pureFull: number[] = [];
  for (let i = 0; i < 2000; i++) {
    let t = performance.now();
    diffState(computeDesired(input, opts), snapEmpty.state);
    pureEmpty.push(performance.now() - t);
    t = performance.now();
    diffState(computeDesired(input, opts), snapFull.state);
    pureFull.push(performance.now() - t);
  }
  const fromNothing: number[] = [];
  const noop: number[] = [];
  const repair: number[] = [];
  const teardown: number[] = [];
  const execCounts = { fromNothing: 0, noop: 0, repair: 0, teardown: 0 };
  let changes = { fromNothing: 0, noop: 0, repair: 0, teardown: 0 };
  const block = input.remoteBlocks[0].cidr;
  for (let i = 0; i < n; i++) {
    let e = execs;
    let r = await reconcile(input, opts);
    fromNothing.push(r.ms.total);
    execCounts.fromNothing += execs - e;
    changes.fromNothing = r.changes.length;
    e = execs;
    r = await reconcile(input, opts);
    noop.push(r.ms.total);
    execCounts.noop += execs - e;
    changes.noop = r.changes.length;
    await ip.run(['route', 'del', block]);
    e = execs;
    r = await reconcile(input, opts);
    repair.push(r.ms.total);
    execCounts.repair += execs - e;
    changes.repair = r.changes.length;
    e = execs;
    r = await reconcile(empty, opts);
    teardown.push(r.ms.total);
    execCounts.teardown += execs - e;
    changes.teardown = r.changes.length;
  }
  const per = (k: keyof typeof execCounts) => execCounts[k] / n;
  changes = { ...changes };
  return {
    pureAgainstEmptyMs: stats(pureEmpty),
    pureAgainstFullMs: stats(pureFull),
    reconcileFromNothingMs: stats(fromNothing),
    reconcileNoopMs: stats(noop),
    reconcileRepairOneRouteMs: stats(repair),
    reconcileTeardownMs: stats(teardown),
    processesPerPass: { fromNothing: per('fromNothing'), noop: per('noop'), repair: per('repair'), teardown: per('teardown') },
    changesPerPass: changes,
  };
}

async function runOp(o: Op): Promise<unknown> {
  switch (o.op) {
    case 'kernel':
      configureKernel();
      return null;
    case 'wire':
      return wirePod(o.spec as Parameters<typeof wirePod>[0], { ip });
    case 'ensure':
      return ensureVxlanDevice(o.spec as VxlanDeviceSpec, { ip });
    case 'remove':
      return removeVxlanDevice({ ip });
    case 'reconcile':
      return reconcile(o.input as OverlayInput, { ...(o.options as ReconcileOptions), ip });
    case 'bench':
      return benchOp(o.input as OverlayInput, (o.options ?? {}) as ReconcileOptions, Number(o.n ?? 10));
    default:
      throw new Error(`unknown op ${o.op}`);
  }
}

async function serve(req: { input: OverlayInput; options?: ReconcileOptions; intervalMs?: number }): Promise<void> {
  const print = (x: unknown) => writeSync(1, JSON.stringify(x) + '\n');
  const rec = new Reconciler(req.input, {
    ...(req.options ?? {}),
    ip,
    intervalMs: req.intervalMs ?? 500,
    onResult: (r) => {
      if (r.changes.length > 0 || r.device.length > 0 || r.errors.length > 0) print({ at: Date.now(), result: r });
    },
    onError: (e) => print({ at: Date.now(), error: e instanceof Error ? e.message : String(e) }),
  });
  await rec.reconcileNow().catch(() => undefined);
  rec.start();
  print({ ready: true });
  process.stdin.resume();
  await new Promise<void>((resolve) => process.stdin.on('end', resolve).on('close', resolve));
  await rec.stop();
}

if (process.argv[2] === 'serve') {
  serve(JSON.parse(process.argv[3] ?? '{}')).catch((e: unknown) => {
    writeSync(2, `${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = 1;
  });
} else {
  runDriver<Op>({ input: process.argv[2] ?? '', runOp, execs: () => execs });
}
