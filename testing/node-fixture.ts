// A node for tests and benchmarks: a "host" network namespace with its own underlay link (a veth
// to an "underlay" namespace standing for the LAN), tortie-node running inside it against a store
// the caller owns, and helpers to make pod namespaces. Nothing touches the root namespace; stop()
// ends the agent by PID and deletes every namespace it made.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createConnection } from 'node:net';
import { join } from 'node:path';

export const ROOT = new URL('../../', import.meta.url).pathname;
export const BIN = (name: string) => join(ROOT, 'bin', name);
const IP = '/usr/sbin/ip';

export function ip(...args: string[]): string {
  return execFileSync(IP, args, { encoding: 'utf8' });
}

export function inNs(ns: string, argv: string[], opts: { timeoutMs?: number } = {}): string {
  return execFileSync(IP, ['netns', 'exec', ns, ...argv], { encoding: 'utf8', timeout: opts.timeoutMs ?? 20_000 });
}

function accepts(path: string): Promise<boolean> {
  if (!existsSync(path)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const s = createConnection({ path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface NodeOptions {
  nodeName?: string;
  /** Datastore environment (DATASTORE_TYPE, DATASTORE_PATH / ETCD_ENDPOINTS). */
  datastoreEnv: Record<string, string>;
  /** Extra agent environment (pool seeding, FELIX_*). */
  env?: Record<string, string>;
  /** Node address on the underlay. */
  address?: string;
}

export class TestNode {
  readonly tag = randomBytes(3).toString('hex');
  readonly hostNs: string;
  readonly underlayNs: string;
  readonly dir = mkdtempSync(join(tmpdir(), 'tortie-node-'));
  readonly runDir = join(this.dir, 'run');
  readonly stateDir = join(this.dir, 'state');
  readonly socket = join(this.runDir, 'cni.sock');
  readonly nodeName: string;
  readonly address: string;
  private agent: ChildProcess | null = null;
  private pods = new Set<string>();
  agentLog = '';

  constructor(private readonly opts: NodeOptions) {
    this.hostNs = `tortie-t${this.tag}-host`;
    this.underlayNs = `tortie-t${this.tag}-lan`;
    this.nodeName = opts.nodeName ?? `node-${this.tag}`;
    this.address = opts.address ?? '10.0.0.11/24';
  }

  /** Creates the namespaces and the underlay link. */
  setUp(): void {
    ip('netns', 'add', this.hostNs);
    ip('netns', 'add', this.underlayNs);
    ip('-n', this.hostNs, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'lan0', 'netns', this.underlayNs);
    ip('-n', this.hostNs, 'addr', 'add', this.address, 'dev', 'eth0');
    ip('-n', this.underlayNs, 'addr', 'add', '10.0.0.1/24', 'dev', 'lan0');
    for (const [ns, dev] of [[this.hostNs, 'eth0'], [this.underlayNs, 'lan0']]) {
      ip('-n', ns, 'link', 'set', dev, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    ip('-n', this.hostNs, 'route', 'add', 'default', 'via', '10.0.0.1');
  }

  agentEnv(): Record<string, string> {
    return {
      NODENAME: this.nodeName,
      TORTIE_RUN_DIR: this.runDir,
      TORTIE_STATE_DIR: this.stateDir,
      IP: 'autodetect',
      CALICO_IPV4POOL_CIDR: '10.233.64.0/18',
      CALICO_IPV4POOL_BLOCK_SIZE: '24',
      CALICO_IPV4POOL_IPIP: 'Never',
      FELIX_HEALTHHOST: '127.0.0.1',
      ...this.opts.datastoreEnv,
      ...this.opts.env,
    };
  }

  /** Starts tortie-node in the host namespace and waits for its CNI socket. */
  async startAgent(timeoutMs = 15_000): Promise<void> {
    this.agentLog = '';
    const child = spawn(IP, ['netns', 'exec', this.hostNs, BIN('tortie-node')], {
      env: this.agentEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d) => (this.agentLog += d));
    child.stderr.on('data', (d) => (this.agentLog += d));
    this.agent = child;
    const deadline = Date.now() + timeoutMs;
    // A socket file may be left by a killed agent: wait until this one answers on it.
    while (!(await accepts(this.socket))) {
      if (child.exitCode !== null) throw new Error(`tortie-node exited (${child.exitCode}):\n${this.agentLog}`);
      if (Date.now() > deadline) throw new Error(`tortie-node did not open ${this.socket}:\n${this.agentLog}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** PID of the running agent (tortie-node itself: `ip netns exec` execs it in place). */
  get agentPid(): number | undefined {
    return this.agent?.pid;
  }

  /** Kills the agent (SIGKILL by default, as a crash) and waits for it to be gone. */
  async killAgent(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.agent;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await gone;
    this.agent = null;
  }

  /** GET http://127.0.0.1:<port><path> from inside the node (the agent's health and metrics servers). */
  httpGet(port: number, path: string): string {
    return inNs(this.hostNs, [process.execPath, '-e',
      `require('http').get('http://127.0.0.1:${port}${path}',r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>process.stdout.write(b))})`]);
  }

  /** The agent's /metrics text (needs FELIX_PROMETHEUSMETRICSENABLED=true, host 127.0.0.1 in env). */
  metrics(port = 9091): string {
    return this.httpGet(port, '/metrics');
  }

  /** A new, empty pod namespace; deleted by stop() unless deleted before. */
  makePodNs(name: string): string {
    const ns = `tortie-t${this.tag}-${name}`;
    ip('netns', 'add', ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    this.pods.add(ns);
    return ns;
  }

  deletePodNs(ns: string): void {
    ip('netns', 'del', ns);
    this.pods.delete(ns);
  }

  async stop(): Promise<void> {
    await this.killAgent('SIGTERM').catch(() => undefined);
    for (const ns of [...this.pods, this.hostNs, this.underlayNs]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
