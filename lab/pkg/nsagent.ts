// Helper run inside a lab namespace (node's own network stack cannot change namespace):
//   node nsagent.js probe '{"proto":"tcp","port":80,"timeoutMs":1000,"targets":[{"key":"ns/p","ip":"10.233.64.2"}]}'
//     → prints {"ns/p": true|false}
//   node nsagent.js wait-http URL TIMEOUT_MS → exit 0 once URL answers 200
//   node nsagent.js wait-ready URL TIMEOUT_MS [SINCE_MS] → polls URL every 100 ms; exit 0 and print the
//     body of the first 200 (with SINCE_MS: whose policy reporter's last pass started at or after that
//     time), or exit 1 and print the last answer (status and body, or the error) at the end
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { request } from 'node:http';
import { connect } from 'node:net';

export interface ProbeRequest {
  proto: 'tcp' | 'udp' | 'icmp';
  port: number;
  timeoutMs: number;
  targets: { key: string; ip: string }[];
}

function tcp(ip: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: ip, port });
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

function udp(ip: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const payload = Buffer.from(`tortie-lab-probe ${Math.random()}`);
    let finished = false;
    const done = (ok: boolean) => {
      if (finished) return;
      finished = true;
      clearTimeout(t);
      clearInterval(again);
      s.close();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.on('message', (m) => {
      if (m.equals(payload)) done(true);
    });
    s.on('error', () => done(false));
    const send = () => s.send(payload, port, ip, () => undefined);
    const again = setInterval(send, Math.max(100, Math.floor(timeoutMs / 3)));
    send();
  });
}

function icmp(ip: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const secs = Math.max(1, Math.ceil(timeoutMs / 1000));
    const c = spawn('/usr/bin/ping', ['-n', '-q', '-c', '1', '-W', String(secs), ip], { stdio: 'ignore' });
    c.on('error', () => resolve(false));
    c.on('exit', (code) => resolve(code === 0));
  });
}

async function probe(req: ProbeRequest): Promise<Record<string, boolean>> {
  const out: Record<string, boolean> = {};
  let next = 0;
  const one = (ip: string) =>
    req.proto === 'icmp' ? icmp(ip, req.timeoutMs) : req.proto === 'udp' ? udp(ip, req.port, req.timeoutMs) : tcp(ip, req.port, req.timeoutMs);
  await Promise.all(
    Array.from({ length: Math.min(32, req.targets.length) }, async () => {
      while (next < req.targets.length) {
        const t = req.targets[next++]!;
        out[t.key] = await one(t.ip);
      }
    }),
  );
  return out;
}

function waitHttp(url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const once = () =>
    new Promise<boolean>((resolve) => {
      const r = request(url, { timeout: 1000, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      });
      r.on('timeout', () => r.destroy());
      r.on('error', () => resolve(false));
      r.end();
    });
  return (async () => {
    while (Date.now() < deadline) {
      if (await once()) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  })();
}

function getOnce(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const r = request(url, { timeout: 1000, agent: false, headers: { Accept: 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    r.on('timeout', () => r.destroy(new Error('no answer within 1 s')));
    r.on('error', (e) => resolve({ status: 0, body: e.message }));
    r.end();
  });
}

/** When the policy loop's last pass started, from its readiness detail; null when not said. */
function policyPassStarted(body: string): number | null {
  try {
    const j = JSON.parse(body) as { reporters?: { name: string; detail?: string }[] };
    const d = j.reporters?.find((r) => r.name === 'policy')?.detail ?? '';
    const m = /pass started (\S+?)\)/.exec(d);
    return m ? Date.parse(m[1]!) : null;
  } catch {
    return null;
  }
}

async function waitReady(url: string, timeoutMs: number, sinceMs?: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = { status: 0, body: 'not asked yet' };
  for (;;) {
    last = await getOnce(url);
    const fresh = sinceMs === undefined || (policyPassStarted(last.body) ?? -1) >= sinceMs;
    if (last.status === 200 && fresh) {
      process.stdout.write(last.body);
      return 0;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  process.stdout.write(JSON.stringify({ httpStatus: last.status, body: last.body }) + '\n');
  return 1;
}

const [cmd, a, b] = process.argv.slice(2);
if (cmd === 'probe') {
  probe(JSON.parse(a!) as ProbeRequest).then((r) => process.stdout.write(JSON.stringify(r) + '\n'));
} else if (cmd === 'wait-http') {
  waitHttp(a!, Number(b ?? 15000)).then((ok) => process.exit(ok ? 0 : 1));
} else if (cmd === 'wait-ready') {
  const since = process.argv[5];
  waitReady(a!, Number(b ?? 15000), since === undefined ? undefined : Number(since)).then((code) => process.exit(code));
} else if (cmd !== undefined) {
  process.stderr.write(`nsagent: unknown command ${cmd}\n`);
  process.exit(2);
}
