// Test helper: a stand-in for tortie-node listening on a unix socket in a temporary directory. It
// records every request line and answers with what `reply` returns: an AgentResponse (sent as one
// JSON line), raw text (sent as is, for malformed answers), or null (close without answering).
// `delayMs` holds the answer back (slow agent). Not used by the plugin itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentRequest, AgentResponse } from '../../agentapi/protocol.js';

export type FakeReply = AgentResponse | { raw: string } | null;

export interface FakeAgentOptions {
  reply?: (req: AgentRequest) => FakeReply | Promise<FakeReply>;
  /** Wait this long before answering. */
  delayMs?: number;
}

export interface FakeAgent {
  /** The socket path (in a fresh temporary directory). */
  socket: string;
  /** The temporary directory (also usable for log files). */
  dir: string;
  /** Every request received, parsed. */
  requests: AgentRequest[];
  /** Raw request lines received. */
  lines: string[];
  /** Changes the behaviour for later requests. */
  set(opts: FakeAgentOptions): void;
  close(): Promise<void>;
}

export const SAMPLE_RESULT = {
  interfaces: [{ name: 'cali82111e10a96' }, { name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/var/run/netns/test' }],
  ips: [{ address: '10.233.64.5/32', interface: 1 }],
  routes: [{ dst: '0.0.0.0/0' }],
  dns: {},
};

const defaultReply = (req: AgentRequest): FakeReply =>
  req.command === 'ADD' ? { ok: true, result: SAMPLE_RESULT } : { ok: true };

export async function startFakeAgent(opts: FakeAgentOptions = {}): Promise<FakeAgent> {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-agent-'));
  const socket = join(dir, 'cni.sock');
  let current: FakeAgentOptions = opts;
  const requests: AgentRequest[] = [];
  const lines: string[] = [];
  const open = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const server: Server = createServer((conn) => {
    open.add(conn);
    conn.on('close', () => open.delete(conn));
    conn.on('error', () => {
      /* the client may go away (timeout tests) */
    });
    let buf = '';
    conn.on('data', (d) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      lines.push(line);
      const req = JSON.parse(line) as AgentRequest;
      requests.push(req);
      const { reply = defaultReply, delayMs = 0 } = current;
      const answer = async () => {
        const r = await reply(req);
        if (conn.destroyed) return;
        if (r === null) conn.destroy();
        else if ('raw' in r) conn.end(r.raw);
        else conn.end(JSON.stringify(r) + '\n');
      };
      if (delayMs > 0) {
        const t = setTimeout(() => {
          timers.delete(t);
          void answer();
        }, delayMs);
        timers.add(t);
      } else {
        void answer();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  return {
    socket,
    dir,
    requests,
    lines,
    set(o) {
      current = o;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const c of open) c.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
