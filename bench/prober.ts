// A prober in a pod's network namespace: a new TCP connection to HOST:PORT every ~1 ms (new
// connections meet the policy; established ones skip it through conntrack), a timestamped line each
// time the outcome flips, so a benchmark reads when packets started to obey a policy change.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A connection not established within this many ms counts as denied. */
export const PROBE_TIMEOUT_MS = 5;

/** Runs in the client pod: a new connection every ~1 ms, a line "<epoch ms> ok|no" when the outcome flips. */
const PROBER = `
const net = require('net');
const [host, port, timeout] = process.argv.slice(1);
let last = null;
function once() {
  const s = net.connect(Number(port), host);
  let done = false;
  const finish = (ok) => {
    if (done) return;
    done = true;
    s.destroy();
    if (ok !== last) { last = ok; process.stdout.write(Date.now() + (ok ? ' ok' : ' no') + '\\n'); }
    setTimeout(once, 1);
  };
  s.once('connect', () => finish(true));
  s.once('error', () => finish(false));
  s.setTimeout(Number(timeout), () => finish(false));
}
once();
`;

export class Prober {
  private readonly child: ChildProcess;
  private state: { at: number; ok: boolean } | null = null;
  private waiters: Array<() => void> = [];

  constructor(ns: string, host: string, port: number) {
    this.child = spawn('/usr/sbin/ip', ['netns', 'exec', ns, process.execPath, '-e', PROBER, host, String(port), String(PROBE_TIMEOUT_MS)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      const [at, what] = l.split(' ');
      this.state = { at: Number(at), ok: what === 'ok' };
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Waits until the outcome is `ok` (at most 20 s); returns the epoch ms it flipped. */
  async until(ok: boolean): Promise<number> {
    const end = Date.now() + 20_000;
    while (this.state?.ok !== ok) {
      if (Date.now() > end) throw new Error(`prober: outcome did not become ${ok ? 'reachable' : 'denied'} within 20 s`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
    return this.state.at;
  }

  stop(): void {
    this.child.kill();
  }
}

