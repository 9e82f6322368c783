// Level-triggered cross-node routing (VXLAN and unencapsulated), the I/O half of routes.ts.
//
// reconcile(input, options), each pass:
//   1. read, in parallel: one `ip -j -N -d -batch -` (addr show; route show table main; neigh show)
//      and `bridge -j fdb show dev vxlan.calico`;
//   2. the VXLAN device: with `vxlan: spec`, create/repair it (planVxlanDevice; one `ip -batch` only when
//      something differs); with `vxlan: false`, delete it when present;
//   3. compute the desired state and the diff (pure, routes.ts);
//   4. apply, in parallel: one `ip -batch -` (neighbours, routes) and one `bridge -batch -` (FDB).
//      A failing line does not stop the rest: the batch goes on after it and the error is reported
//      (a delete that meets "not found" is not an error: the entry is gone, which was the point).
// A pass with nothing to change costs the two reads (2 processes).
//
// The Reconciler runs a pass on demand (coalescing requests that arrive during a pass) and every
// `intervalMs`, so an entry deleted by hand comes back within one interval.

import { CommandError, IP_BIN, type IpRoute, parseJsonValues, checkBatchWord } from './iproute.js';
import {
  computeDesired,
  diffState,
  parseFdb,
  parseNeighbours,
  parseRoutes,
  type Change,
  type KernelState,
  type OverlayInput,
  type OverlayOptions,
} from './routes.js';
import {
  applyVxlanPlan,
  ipOf,
  ipv4Of,
  linkWithAddress,
  planVxlanDevice,
  VXLAN_DEVICE,
  vxlanResult,
  type AddrLinkJson,
  type EnsureVxlanResult,
  type VxlanDeviceSpec,
  type VxlanIoOptions,
} from './vxlan.js';

export const BRIDGE_BIN = '/usr/sbin/bridge';

export interface ReconcileOptions extends OverlayOptions, VxlanIoOptions {
  /**
   * The VXLAN device: a spec = create/repair it each pass (its name overrides vxlanDevice);
   * false = delete it when present (no VXLAN in use); absent = leave it as it is.
   */
  vxlan?: VxlanDeviceSpec | false;
}

export interface ReconcileResult {
  /** What was wrong with the VXLAN device and was fixed ("absent", "vni 42, want 4096", "removed"). */
  device: string[];
  /** Changes applied (or attempted: see errors), in order. */
  changes: Change[];
  /** Desired entries already in place. */
  inPlace: number;
  /** Batch lines that failed. */
  errors: string[];
  warnings: string[];
  /** Milliseconds: read, compute (pure: desired + diff), apply, total. */
  ms: { read: number; compute: number; apply: number; total: number };
}

// ---------------------------------------------------------------------------------------------------
// bridge

/** argv for `<bin> <args>` in `netns` (IpRoute's namespace handling: `-n name` or nsenter). */
export function toolArgv(ip: IpRoute, bin: string, args: readonly string[], netns?: string): string[] {
  const argv = ip.argv(args, netns);
  argv[argv.indexOf(IP_BIN)] = bin;
  return argv;
}

/**
 * Runs `ip` or `bridge` with any global flags (IpRoute has no `-N`); with `batch`, the lines go to
 * `<bin> <args> -batch -`. Throws CommandError as IpRoute does (with the failing batch line).
 */
export async function runTool(
  ip: IpRoute,
  bin: string,
  args: readonly string[],
  opts: { netns?: string; batch?: readonly (readonly string[])[] } = {},
): Promise<string> {
  let input: string | undefined;
  let full = [...args];
  if (opts.batch) {
    for (const c of opts.batch) c.forEach(checkBatchWord);
    input = opts.batch.map((c) => c.join(' ')).join('\n') + '\n';
    full = [...args, '-batch', '-'];
  }
  const argv = toolArgv(ip, bin, full, opts.netns);
  const r = await ip.exec(argv[0]!, argv.slice(1), input);
  if (r.code === 0) return r.stdout;
  const m = /Command failed -:(\d+)/.exec(r.stderr);
  const failed = opts.batch && m ? { index: Number(m[1]) - 1, command: opts.batch[Number(m[1]) - 1] ?? [] } : undefined;
  throw new CommandError(argv, r.code, r.stderr, failed, r.signal);
}

// ---------------------------------------------------------------------------------------------------
// Read

export interface KernelSnapshot {
  links: AddrLinkJson[];
  state: KernelState;
}

/** Links (with addresses), main-table IPv4 routes, neighbours and the VXLAN device's FDB. */
export async function readKernel(opts: VxlanIoOptions & { vxlanDevice?: string } = {}): Promise<KernelSnapshot> {
  const ip = ipOf(opts);
  const dev = opts.vxlanDevice ?? VXLAN_DEVICE;
  const ipRead = runTool(ip, IP_BIN, ['-j', '-N', '-d'], {
    netns: opts.netns,
    batch: [['addr', 'show'], ['route', 'show', 'table', 'main'], ['neigh', 'show']],
  });
  const fdbRead = runTool(ip, BRIDGE_BIN, ['-j', 'fdb', 'show', 'dev', dev], { netns: opts.netns }).catch((e: unknown) => {
    if (e instanceof CommandError && e.notFound) return '[]';
    throw e;
  });
  const [ipOut, fdbOut] = await Promise.all([ipRead, fdbRead]);
  const [links, routes, neigh] = parseJsonValues(ipOut);
  const linkList = (Array.isArray(links) ? links : []) as AddrLinkJson[];
  return {
    links: linkList,
    state: {
      routes: parseRoutes(routes),
      neighbours: parseNeighbours(neigh),
      fdb: parseFdb(fdbOut.trim() === '' ? [] : JSON.parse(fdbOut), dev),
      vxlanDevicePresent: linkList.some((l) => l.ifname === dev),
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Apply

/** Runs a batch to the end despite failing lines; returns the failures (not-found deletes excepted). */
async function batchContinuing(
  cmds: readonly string[][],
  run: (cmds: readonly string[][]) => Promise<unknown>,
): Promise<string[]> {
  const errors: string[] = [];
  let rest = cmds;
  while (rest.length > 0) {
    try {
      await run(rest);
      break;
    } catch (e) {
      if (!(e instanceof CommandError) || !e.failed || e.failed.index < 0 || e.failed.index >= rest.length) {
        errors.push(e instanceof Error ? e.message : String(e));
        break;
      }
      const cmd = rest[e.failed.index]!;
      const isDel = cmd[1] === 'del';
      if (!(isDel && e.notFound)) errors.push(`${cmd.join(' ')}: ${e.stderr.split('\n').filter((l) => l && !/^Command failed/.test(l)).join('; ')}`);
      rest = rest.slice(e.failed.index + 1);
    }
  }
  return errors;
}

function withoutDevice(state: KernelState, dev: string): KernelState {
  return {
    routes: state.routes.filter((r) => r.dev !== dev),
    neighbours: state.neighbours.filter((n) => n.dev !== dev),
    fdb: [],
    vxlanDevicePresent: false,
  };
}

/** One level-triggered pass: read the kernel, fix the device, diff, apply. */
export async function reconcile(input: OverlayInput, options: ReconcileOptions = {}): Promise<ReconcileResult> {
  const t0 = performance.now();
  const ip = ipOf(options);
  const netns = options.netns;
  const devName = options.vxlan ? (options.vxlan.name ?? VXLAN_DEVICE) : (options.vxlanDevice ?? VXLAN_DEVICE);
  const overlayOpts: OverlayOptions = { ...options, vxlanDevice: devName };
  const snap = await readKernel({ ip, netns, vxlanDevice: devName });
  const t1 = performance.now();

  // The device.
  const device: string[] = [];
  let state = snap.state;
  let deviceMs = 0;
  const deviceErrors: string[] = [];
  if (options.vxlan) {
    // A device that cannot be made right (no parent yet, a conflicting device) is an error of this
    // pass, not a reason to leave the other routes alone: the pass goes on without (a right) device.
    try {
      const plan = planVxlanDevice(options.vxlan, snap.links);
      if (plan.commands.length > 0) {
        const td = performance.now();
        if (plan.create || plan.recreate) state = withoutDevice(state, devName);
        await applyVxlanPlan(plan, { ip, netns });
        deviceMs = performance.now() - td;
        const r: EnsureVxlanResult = vxlanResult(plan);
        device.push(...(r.created ? ['created'] : r.recreated ? [`recreated (${r.actions.join(', ')})`] : r.actions.map((a) => `fixed: ${a}`)));
        state = { ...state, vxlanDevicePresent: true };
      }
    } catch (e) {
      deviceErrors.push(`device ${devName}: ${e instanceof Error ? e.message : String(e)}`);
      // Whatever state the device is in now, read it again next pass; this one assumes it is unusable.
      state = withoutDevice(state, devName);
    }
  } else if (options.vxlan === false && state.vxlanDevicePresent) {
    const td = performance.now();
    try {
      await ip.run(['link', 'del', 'dev', devName], { netns });
    } catch (e) {
      if (!(e instanceof CommandError && e.notFound)) throw e;
    }
    deviceMs = performance.now() - td;
    device.push('removed');
    state = withoutDevice(state, devName);
  }

  // Fill in what the kernel knows: this node's subnet and underlay device.
  const filled: OverlayInput = { ...input };
  const localSpec = input.localAddress ?? (options.vxlan ? options.vxlan.localAddress : undefined);
  if (localSpec !== undefined) {
    const addr = ipv4Of(localSpec);
    const link = addr ? linkWithAddress(snap.links, addr) : undefined;
    if (addr && !localSpec.includes('/') && link) {
      const a = link.addr_info!.find((x) => x.family === 'inet' && x.local !== undefined && ipv4Of(x.local) === addr)!;
      filled.localAddress = `${addr}/${a.prefixlen}`;
    } else filled.localAddress = localSpec;
    if (filled.underlayDevice === undefined) {
      filled.underlayDevice = (options.vxlan ? options.vxlan.parentIfName : undefined) || link?.ifname;
    }
  }

  // Pure part.
  const tc = performance.now();
  const desired = computeDesired(filled, overlayOpts);
  const plan = diffState(desired, state);
  const t2 = performance.now();

  // Apply.
  const [ipErrors, bridgeErrors] = await Promise.all([
    plan.ip.length > 0 ? batchContinuing(plan.ip, (c) => ip.batch(c, { netns })) : Promise.resolve([]),
    plan.bridge.length > 0 ? batchContinuing(plan.bridge, (c) => runTool(ip, BRIDGE_BIN, [], { netns, batch: c })) : Promise.resolve([]),
  ]);
  const t3 = performance.now();
  return {
    device,
    changes: plan.changes,
    inPlace: plan.inPlace,
    errors: [...deviceErrors, ...ipErrors, ...bridgeErrors],
    warnings: [...desired.warnings, ...plan.warnings],
    ms: { read: t1 - t0, compute: t2 - tc, apply: t3 - t2 + deviceMs, total: t3 - t0 },
  };
}

// ---------------------------------------------------------------------------------------------------
// Reconciler

export interface ReconcilerOptions extends ReconcileOptions {
  /** Period of the level-triggered pass; default 5000 ms. */
  intervalMs?: number;
  /** Called after every pass. */
  onResult?: (r: ReconcileResult) => void;
  /** Called when a pass throws (read failure, bad device spec, ...). */
  onError?: (e: unknown) => void;
}

/** Runs reconcile on demand and periodically; passes never overlap. */
export class Reconciler {
  private input: OverlayInput | null;
  private opts: ReconcilerOptions;
  private running: Promise<ReconcileResult> | null = null;
  private queued: Promise<ReconcileResult> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  /** The last pass's result, if any. */
  lastResult: ReconcileResult | null = null;
  /** The last pass's error, cleared by a successful pass. */
  lastError: unknown = null;
  /** Passes run so far. */
  passes = 0;

  constructor(input: OverlayInput | null, opts: ReconcilerOptions = {}) {
    this.input = input;
    this.opts = { ...opts };
    const iv = this.opts.intervalMs ?? 5000;
    if (!Number.isFinite(iv) || iv < 10) throw new RangeError(`invalid intervalMs ${this.opts.intervalMs}`);
  }

  /** Replaces the desired state (and, when given, the options) and runs a pass. */
  update(input: OverlayInput, opts?: Partial<ReconcileOptions>): Promise<ReconcileResult> {
    this.input = input;
    if (opts) this.opts = { ...this.opts, ...opts };
    return this.reconcileNow();
  }

  /**
   * Runs a pass now, or right after the one in progress (requests arriving meanwhile share that
   * next pass). Rejects when the pass fails.
   */
  reconcileNow(): Promise<ReconcileResult> {
    if (this.queued) return this.queued;
    if (!this.running) return this.start1();
    const after = this.running.then(
      () => undefined,
      () => undefined,
    );
    this.queued = after.then(() => {
      this.queued = null;
      return this.start1();
    });
    return this.queued;
  }

  private start1(): Promise<ReconcileResult> {
    const input = this.input;
    const p = (async () => {
      if (!input) throw new Error('no desired state yet');
      return reconcile(input, this.opts);
    })();
    this.running = p;
    p.then(
      (r) => {
        this.passes++;
        this.lastResult = r;
        this.lastError = null;
        this.opts.onResult?.(r);
      },
      (e: unknown) => {
        this.passes++;
        this.lastError = e;
        this.opts.onError?.(e);
      },
    ).finally(() => {
      if (this.running === p) this.running = null;
    });
    return p;
  }

  /** Starts the periodic passes (the first one immediately). */
  start(): void {
    if (this.started) return;
    this.started = true;
    const tick = () => {
      if (!this.started) return;
      this.reconcileNow()
        .catch(() => undefined)
        .finally(() => {
          if (this.started) {
            this.timer = setTimeout(tick, this.opts.intervalMs ?? 5000);
            this.timer.unref();
          }
        });
    };
    tick();
  }

  /** Stops the periodic passes and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const pending = this.queued ?? this.running;
    if (pending) await pending.catch(() => undefined);
  }
}
