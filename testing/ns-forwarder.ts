// A loopback server of the root namespace (a test's kube-apiserver, on 127.0.0.1:<port>) made
// reachable at the same 127.0.0.1:<port> inside a network namespace, with no link between the two:
// a forwarder process inside the namespace (started here, ended by its PID) connects to a Unix socket
// in a temp dir, which this process bridges to the real port. stopInNs()/startInNs() cut and restore
// the path (an API outage seen from the namespace) while the server itself keeps running.
import { type ChildProcess, spawn } from 'node:child_process';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';

const FORWARDER = `const net=require('net');const [sock,port]=process.argv.slice(1);
net.createServer(c=>{const u=net.connect(sock);c.pipe(u).pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy())})
.listen(Number(port),'127.0.0.1',()=>console.log('up'))`;

export class NsPortForwarder {
  private bridge: Server | null = null;
  private child: ChildProcess | null = null;
  private readonly sock: string;

  /** `dir`: a temp dir of the caller's (holds the socket). */
  constructor(
    private readonly ns: string,
    private readonly port: number,
    dir: string,
  ) {
    this.sock = join(dir, `fwd-${port}.sock`);
  }

  /** Bridges the socket to the port (once) and starts the forwarder inside the namespace. */
  async start(): Promise<void> {
    if (!this.bridge) {
      const port = this.port;
      const bridge = createServer((c) => {
        const up = createConnection({ host: '127.0.0.1', port });
        c.pipe(up).pipe(c);
        c.on('error', () => up.destroy());
        up.on('error', () => c.destroy());
      });
      await new Promise<void>((r) => bridge.listen(this.sock, r));
      this.bridge = bridge;
    }
    await this.startInNs();
  }

  /** Starts the forwarder inside the namespace (after stopInNs). */
  async startInNs(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return;
    const f = spawn('/usr/sbin/ip', ['netns', 'exec', this.ns, process.execPath, '-e', FORWARDER, this.sock, String(this.port)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.child = f;
    await new Promise<void>((resolve, reject) => {
      f.stdout!.once('data', () => resolve());
      f.once('exit', (code) => reject(new Error(`forwarder in ${this.ns} exited (${code}) before listening on 127.0.0.1:${this.port}`)));
    });
  }

  /** Ends the forwarder inside the namespace (by its PID): the port is unreachable there. */
  async stopInNs(): Promise<void> {
    const f = this.child;
    if (!f || f.exitCode !== null || f.signalCode !== null) return;
    const gone = new Promise((r) => f.once('exit', r));
    f.kill('SIGKILL');
    await gone;
  }

  /** Ends the forwarder and the bridge. */
  async close(): Promise<void> {
    await this.stopInNs();
    const b = this.bridge;
    this.bridge = null;
    if (b) await new Promise((r) => b.close(r));
  }
}
