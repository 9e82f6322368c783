// Test driver: runs podnet operations in the namespace it is started in (the tests start it with
// `ip netns exec <host-ns> /usr/bin/node podnet-driver.js '<json>'`) and prints one JSON line.
//
// Request: one op or an array of ops, each
//   {op: "wire" | "unwire" | "check", spec}
//   {op: "exists", name} | {op: "mac", netns, ifname} | {op: "mtu", pattern?} |
//   {op: "bench", spec, n}   (n × wirePod + unwirePod, timed)
// Answer: an array of {ok: true, value, ms, execs} | {ok: false, error: {name, step, message}, ms}.

import { IpRoute, spawnExec, type Exec } from '../iproute.js';
import { checkPod, hostInterfaceExists, podInterfaceMac, unwirePod, wirePod, PodNetError } from '../podnet.js';
import { runDriver } from './driver-main.js';

let execs = 0;
const real = spawnExec();
const counting: Exec = (file, args, input) => {
  execs++;
  return real(file, args, input);
};
const ip = new IpRoute(counting);
const opts = { ip };

type Op = { op: string; [k: string]: unknown };

function stats(xs: number[]): { n: number; min: number; median: number; p90: number; max: number; mean: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  const r = (x: number) => Math.round(x * 100) / 100;
  return { n: s.length, min: r(s[0]), median: r(q(0.5)), p90: r(q(0.9)), max: r(s[s.length - 1]), mean: r(s.reduce((a, b) => a + b, 0) / s.length) };
}

async function runOp(o: Op): Promise<unknown> {
  switch (o.op) {
    case 'wire': {
      const spec = o.spec as Parameters<typeof wirePod>[0];
      if (!Array.isArray(o.felixFirst)) return wirePod(spec, opts);
      // Emulates Felix programming the host routes between the veth creation and wirePod's own routes.
      const routes = o.felixFirst as string[];
      const racing: Exec = async (file, args, input) => {
        const r = await counting(file, args, input);
        if (r.code === 0 && input?.includes(`link add ${spec.hostIfName} `)) {
          await ip.batch([['link', 'set', 'dev', spec.hostIfName, 'up'], ...routes.map((d) => ['route', 'add', d, 'dev', spec.hostIfName, 'scope', 'link'])]);
        }
        return r;
      };
      return wirePod(spec, { ip: new IpRoute(racing) });
    }
    case 'unwire':
      await unwirePod(o.spec as Parameters<typeof unwirePod>[0], opts);
      return null;
    case 'check':
      return checkPod(o.spec as Parameters<typeof checkPod>[0], opts);
    case 'exists':
      return hostInterfaceExists(String(o.name));
    case 'mac':
      return podInterfaceMac(String(o.netns), String(o.ifname), opts);
    case 'bench': {
      const spec = o.spec as Parameters<typeof wirePod>[0];
      const n = Number(o.n ?? 20);
      const wire: number[] = [];
      const unwire: number[] = [];
      const cycle: number[] = [];
      let wireExecs = 0;
      let unwireExecs = 0;
      for (let i = 0; i < n; i++) {
        const e0 = execs;
        const t0 = performance.now();
        await wirePod(spec, opts);
        const t1 = performance.now();
        const e1 = execs;
        await unwirePod(spec, opts);
        const t2 = performance.now();
        wireExecs += e1 - e0;
        unwireExecs += execs - e1;
        wire.push(t1 - t0);
        unwire.push(t2 - t1);
        cycle.push(t2 - t0);
      }
      return { wire: stats(wire), unwire: stats(unwire), cycle: stats(cycle), execsPerWire: wireExecs / n, execsPerUnwire: unwireExecs / n };
    }
    default:
      throw new Error(`unknown op ${o.op}`);
  }
}

runDriver<Op>({
  input: process.argv[2] ?? '',
  runOp,
  execs: () => execs,
  errorFields: (e) => ({ step: e instanceof PodNetError ? e.step : undefined }),
});
