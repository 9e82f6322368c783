// Starts a throwaway single-member etcd (/usr/bin/etcd) on free loopback ports for tests. Every
// instance is stopped by its PID: by stop(), and as a last resort when the test process exits.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestPKI, type TestPKI } from './certs.js';
import { track, untrack } from './reaper.js';

export const ETCD_BIN = '/usr/bin/etcd';

export interface StartEtcdOptions {
  /** Serve clients over TLS with a fresh throwaway PKI; clients must present a certificate. */
  tls?: { clientCertAuth?: boolean };
  /** How long to wait for /health (ms). */
  startTimeoutMs?: number;
}

export interface TestEtcd {
  endpoints: string[];
  dataDir: string;
  /** Temp dir holding data and certificates; removed by stop(). */
  dir: string;
  pid: number;
  /** Set when started with tls: certificates a good client uses, plus the server's. */
  pki?: TestPKI;
  stop(): Promise<void>;
}

/** A port that was free a moment ago on 127.0.0.1 (bind to 0, read it, release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function healthy(endpoint: string, pki?: TestPKI): Promise<boolean> {
  return new Promise((resolve) => {
    const url = new URL('/health', endpoint);
    const opts = pki
      ? { ca: readFileSync(pki.caFile), cert: readFileSync(pki.clientCertFile), key: readFileSync(pki.clientKeyFile) }
      : {};
    const req = (pki ? httpsRequest : httpRequest)(url, { ...opts, timeout: 1000, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"true"')));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function etcdArch(): string | undefined {
  // etcd 3.4 refuses to start on architectures other than amd64/ppc64le unless told to.
  const map: Record<string, string> = { arm64: 'arm64', arm: 'arm', s390x: 's390x', ia32: '386' };
  return process.arch === 'x64' || process.arch === 'ppc64' ? undefined : map[process.arch] ?? process.arch;
}

async function startOnce(opts: StartEtcdOptions, dir: string, pki: TestPKI | undefined): Promise<TestEtcd> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const scheme = pki ? 'https' : 'http';
  const client = `${scheme}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const dataDir = join(dir, 'data');
  const args = [
    '--name', 'tortie-test',
    '--data-dir', dataDir,
    '--listen-client-urls', client,
    '--advertise-client-urls', client,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `tortie-test=${peer}`,
    '--initial-cluster-state', 'new',
    '--logger', 'zap',
    '--log-outputs', 'stderr',
    '--log-level', 'error',
    // A lone member elects itself after one election timeout: keep it short.
    '--heartbeat-interval', '10',
    '--election-timeout', '100',
  ];
  if (pki) {
    args.push('--cert-file', pki.serverCertFile, '--key-file', pki.serverKeyFile,
      '--trusted-ca-file', pki.caFile);
    if (opts.tls?.clientCertAuth !== false) args.push('--client-cert-auth');
  }
  const env = { ...process.env };
  const arch = etcdArch();
  if (arch) env.ETCD_UNSUPPORTED_ARCH = arch;
  const child = spawn(ETCD_BIN, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  track(child, dir);
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  let exited: number | string | null | undefined;
  const exitP = new Promise<void>((r) =>
    child.on('exit', (code, sig) => {
      exited = code ?? sig;
      untrack(child);
      r();
    }),
  );
  child.on('error', (e) => (log += `\nspawn error: ${e.message}`));
  // Neither the child nor its log pipe keeps the test process alive; the exit hook kills it.
  child.unref();
  (child.stderr as unknown as { unref?: () => void }).unref?.();

  const stop = async () => {
    if (exited === undefined && child.pid) {
      try {
        process.kill(child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const t = setTimeout(() => {
        try {
          if (child.pid) process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 3000);
      await exitP;
      clearTimeout(t);
    }
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? 15000);
  while (Date.now() < deadline) {
    if (exited !== undefined) break;
    if (await healthy(client, pki)) {
      return { endpoints: [client], dataDir, dir, pid: child.pid!, pki, stop };
    }
    await sleep(50);
  }
  await stop();
  throw new Error(`etcd on ${client} did not become healthy (exit ${exited ?? 'none'}): ${log.trim()}`);
}

/** Starts etcd; retries with new ports if a port was taken between probing and binding. */
export async function startEtcd(opts: StartEtcdOptions = {}): Promise<TestEtcd> {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-etcd-'));
  try {
    const pki = opts.tls ? makeTestPKI(dir) : undefined;
    let lastErr: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        rmSync(join(dir, 'data'), { recursive: true, force: true });
        const e = await startOnce(opts, dir, pki);
        const stopEtcd = e.stop;
        let stopped = false;
        e.stop = async () => {
          if (stopped) return;
          stopped = true;
          await stopEtcd();
          rmSync(dir, { recursive: true, force: true });
        };
        return e;
      } catch (err) {
        lastErr = err;
        if (!/address already in use/.test(String(err))) break;
      }
    }
    throw lastErr;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
