// A throwaway Kubernetes control plane for tests: etcd and kube-apiserver, both built from source by
// scripts/build-kubernetes.sh into a cache outside the tree, started on free loopback ports in a
// temporary directory with their own certificates (a CA, a serving certificate for 127.0.0.1, a
// service-account key pair, an admin client certificate in group system:masters) and a kubeconfig.
// Every process is stopped by its PID: by stop(), and as a last resort when the test process exits.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './etcd.js';
import { track, untrack } from './reaper.js';

/** The versions scripts/build-kubernetes.sh builds by default (keep in step with its defaults). */
export const K8S_VERSION_DEFAULT = 'v1.34.4';
export const ETCD_VERSION_DEFAULT = 'v3.6.16';

/** The build's settings, read from the same environment variables as scripts/build-kubernetes.sh. */
export function kubernetesBuild(env: NodeJS.ProcessEnv = process.env): { cache: string; k8sVersion: string; etcdVersion: string } {
  return {
    cache: env.TORTIE_CACHE || '/var/cache/tortie',
    k8sVersion: env.TORTIE_K8S_VERSION || K8S_VERSION_DEFAULT,
    etcdVersion: env.TORTIE_ETCD_VERSION || ETCD_VERSION_DEFAULT,
  };
}

export interface KubernetesBinaries {
  kubeApiserver: string;
  kubectl: string;
  kubelet: string;
  kubeProxy: string;
  kubeScheduler: string;
  kubeControllerManager: string;
  etcd: string;
  etcdctl: string;
}

/** Where scripts/build-kubernetes.sh puts each binary (whether or not it has been built). */
export function kubernetesBinaries(env: NodeJS.ProcessEnv = process.env): KubernetesBinaries {
  const { cache, k8sVersion, etcdVersion } = kubernetesBuild(env);
  const k = (n: string) => join(cache, 'k8s', k8sVersion, 'bin', n);
  const e = (n: string) => join(cache, 'etcd', etcdVersion, 'bin', n);
  return {
    kubeApiserver: k('kube-apiserver'),
    kubectl: k('kubectl'),
    kubelet: k('kubelet'),
    kubeProxy: k('kube-proxy'),
    kubeScheduler: k('kube-scheduler'),
    kubeControllerManager: k('kube-controller-manager'),
    etcd: e('etcd'),
    etcdctl: e('etcdctl'),
  };
}

/** The paths among `which` that are not built (empty when all are there). */
export function missingKubernetesBinaries(
  which: (keyof KubernetesBinaries)[] = ['kubeApiserver', 'kubectl', 'etcd'],
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  const bins = kubernetesBinaries(env);
  return which.map((w) => bins[w]).filter((p) => !existsSync(p));
}

export interface StartKubeApiserverOptions {
  /** How long to wait for etcd's /health and then the apiserver's /readyz (ms, each). Default 120 s. */
  startTimeoutMs?: number;
  /** --service-cluster-ip-range (default 10.0.0.0/24). */
  serviceClusterIPRange?: string;
  /**
   * --advertise-address (default 127.0.0.1: nothing outside loopback is used). The apiserver may not
   * publish a loopback address as the `kubernetes` Service's endpoint (Endpoints validation refuses
   * 127.0.0.0/8), so with a loopback address the endpoint reconciler is off (the Service exists with
   * no endpoints); give a real address for pods that must reach the API through the Service.
   */
  advertiseAddress?: string;
  /**
   * --min-request-timeout in seconds: the API server ends every watch after a random time between
   * this and twice this (default: the server's own, 1800 s). 1 makes every watch stream close every
   * 1–2 s, which is how tests prove that watches resume without losing or repeating events.
   */
  minRequestTimeoutSeconds?: number;
  /** More kube-apiserver flags, appended last (so they win). */
  extraArgs?: string[];
  /** Binaries to use instead of the build cache's. */
  binaries?: Partial<KubernetesBinaries>;
}

export interface KubeApiserverPKI {
  caFile: string;
  caKeyFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  /** CN=tortie-admin, O=system:masters. */
  adminCertFile: string;
  adminKeyFile: string;
  /** The service-account signing key pair (ECDSA P-256). */
  serviceAccountKeyFile: string;
  serviceAccountPubFile: string;
}

export interface TestKubeApiserver {
  /** https://127.0.0.1:<port> */
  url: string;
  port: number;
  /** An admin kubeconfig (system:masters). */
  kubeconfig: string;
  etcdEndpoint: string;
  /** Temp dir holding data, certificates, kubeconfig and logs; removed by stop(). */
  dir: string;
  pids: { etcd: number; apiserver: number };
  pki: KubeApiserverPKI;
  binaries: KubernetesBinaries;
  /** Runs the built kubectl with this kubeconfig; rejects with its output when it exits non-zero. */
  kubectl(args: string[], input?: string): Promise<{ stdout: string; stderr: string }>;
  /** The last lines of the apiserver's and etcd's logs (for failure messages). */
  logs(): string;
  stop(): Promise<void>;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args[0]} failed: ${err.stderr?.toString() || err.message}`);
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Key + certificate `<name>.pem`/`<name>-key.pem` for `subj`, signed by ca.pem, extensions from `ext`. */
function issue(dir: string, name: string, subj: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(['req', ...EC, '-keyout', `${name}-key.pem`, '-subj', subj, '-out', `${name}.csr`], dir);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial',
    '-days', '2', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`], dir);
}

/** The control plane's certificates and service-account key pair, made in `dir` with the openssl CLI. */
export function makeKubeApiserverPKI(dir: string): KubeApiserverPKI {
  mkdirSync(dir, { recursive: true });
  openssl(['req', '-x509', ...EC, '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2',
    '-subj', '/CN=tortie-test-kubernetes-ca', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature'], dir);
  issue(dir, 'apiserver', '/CN=kube-apiserver',
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n' +
    'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  issue(dir, 'admin', '/O=system:masters/CN=tortie-admin',
    'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'sa-key.pem'], dir);
  openssl(['pkey', '-in', 'sa-key.pem', '-pubout', '-out', 'sa.pub'], dir);
  const f = (n: string) => join(dir, n);
  return {
    caFile: f('ca.pem'),
    caKeyFile: f('ca-key.pem'),
    serverCertFile: f('apiserver.pem'),
    serverKeyFile: f('apiserver-key.pem'),
    adminCertFile: f('admin.pem'),
    adminKeyFile: f('admin-key.pem'),
    serviceAccountKeyFile: f('sa-key.pem'),
    serviceAccountPubFile: f('sa.pub'),
  };
}

/** A kubeconfig (JSON, which kubectl reads as YAML) for `server` with a client certificate. */
export function writeKubeconfig(file: string, server: string, caFile: string, certFile: string, keyFile: string, user = 'admin'): void {
  const cfg = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'tortie-test', cluster: { server, 'certificate-authority': caFile } }],
    users: [{ name: user, user: { 'client-certificate': certFile, 'client-key': keyFile } }],
    contexts: [{ name: 'tortie-test', context: { cluster: 'tortie-test', user } }],
    'current-context': 'tortie-test',
    preferences: {},
  };
  writeFileSync(file, JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET `url`; resolves with the status and body, or undefined when nothing answered. */
function get(url: string, tls?: { ca: Buffer; cert: Buffer; key: Buffer }): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = (tls ? httpsRequest : httpRequest)(new URL(url), { ...(tls ?? {}), timeout: 3000, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

interface Proc {
  child: ChildProcess;
  pid: number;
  exited(): number | string | null | undefined;
  log(): string;
  stop(): Promise<void>;
}

/** Starts `bin` with its stderr and stdout kept in `logFile` (and the last 8 KiB in memory). */
function startProc(bin: string, args: string[], dir: string, logFile: string): Proc {
  const child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  track(child, dir);
  let tail = '';
  const onData = (d: Buffer) => {
    tail = (tail + d.toString()).slice(-8192);
    try {
      writeFileSync(logFile, d, { flag: 'a' });
    } catch {
      // the directory is being removed
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let exited: number | string | null | undefined;
  const exitP = new Promise<void>((r) =>
    child.on('exit', (code, sig) => {
      exited = code ?? sig;
      untrack(child);
      r();
    }),
  );
  child.on('error', (e) => {
    tail += `\nspawn error: ${e.message}`;
    exited ??= 'spawn-error';
    untrack(child);
  });
  // Neither the child nor its pipes keep the test process alive; the exit hook kills it.
  child.unref();
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  return {
    child,
    pid: child.pid ?? -1,
    exited: () => exited,
    log: () => tail,
    stop: async () => {
      if (exited !== undefined || !child.pid) return;
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
      }, 5000);
      await exitP;
      clearTimeout(t);
    },
  };
}

async function startEtcdOnce(bin: string, dir: string, timeoutMs: number): Promise<{ proc: Proc; endpoint: string }> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const dataDir = join(dir, 'etcd-data');
  rmSync(dataDir, { recursive: true, force: true });
  const proc = startProc(bin, [
    '--name', 'tortie-test',
    '--data-dir', dataDir,
    '--listen-client-urls', client,
    '--advertise-client-urls', client,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `tortie-test=${peer}`,
    '--initial-cluster-state', 'new',
    '--unsafe-no-fsync',
    '--log-level', 'warn',
    '--heartbeat-interval', '10',
    '--election-timeout', '100',
  ], dir, join(dir, 'etcd.log'));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && proc.exited() === undefined) {
    const r = await get(`${client}/health`);
    if (r?.status === 200 && r.body.includes('"true"')) return { proc, endpoint: client };
    await sleep(100);
  }
  await proc.stop();
  throw new Error(`etcd (${bin}) on ${client} did not become healthy (exit ${proc.exited() ?? 'none'}): ${proc.log().trim()}`);
}

async function startApiserverOnce(
  bin: string, dir: string, etcdEndpoint: string, pki: KubeApiserverPKI, opts: StartKubeApiserverOptions, timeoutMs: number,
): Promise<{ proc: Proc; port: number; url: string }> {
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const advertise = opts.advertiseAddress ?? '127.0.0.1';
  const args = [
    `--etcd-servers=${etcdEndpoint}`,
    '--bind-address=127.0.0.1',
    `--advertise-address=${advertise}`,
    ...(/^127\./.test(advertise) || advertise === '::1' ? ['--endpoint-reconciler-type=none'] : []),
    `--secure-port=${port}`,
    `--cert-dir=${join(dir, 'apiserver-certs')}`,
    `--tls-cert-file=${pki.serverCertFile}`,
    `--tls-private-key-file=${pki.serverKeyFile}`,
    `--client-ca-file=${pki.caFile}`,
    `--service-account-issuer=https://kubernetes.default.svc.cluster.local`,
    `--service-account-key-file=${pki.serviceAccountPubFile}`,
    `--service-account-signing-key-file=${pki.serviceAccountKeyFile}`,
    `--service-cluster-ip-range=${opts.serviceClusterIPRange ?? '10.0.0.0/24'}`,
    '--authorization-mode=Node,RBAC',
    '--allow-privileged=true',
    '--profiling=false',
    ...(opts.minRequestTimeoutSeconds !== undefined ? [`--min-request-timeout=${opts.minRequestTimeoutSeconds}`] : []),
    ...(opts.extraArgs ?? []),
  ];
  const proc = startProc(bin, args, dir, join(dir, 'kube-apiserver.log'));
  const tls = { ca: readFileSync(pki.caFile), cert: readFileSync(pki.adminCertFile), key: readFileSync(pki.adminKeyFile) };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && proc.exited() === undefined) {
    const r = await get(`${url}/readyz`, tls);
    if (r?.status === 200 && r.body.trim() === 'ok') return { proc, port, url };
    await sleep(250);
  }
  const why = proc.exited() === undefined ? `not ready after ${timeoutMs} ms` : `exited (${proc.exited()})`;
  await proc.stop();
  throw new Error(`kube-apiserver (${bin}) on ${url} ${why}: ${proc.log().trim().split('\n').slice(-30).join('\n')}`);
}

/**
 * Starts etcd and kube-apiserver from the build cache (scripts/build-kubernetes.sh) and waits until
 * /readyz answers ok. Retries with new ports if one was taken between probing and binding.
 */
export async function startKubeApiserver(opts: StartKubeApiserverOptions = {}): Promise<TestKubeApiserver> {
  const binaries = { ...kubernetesBinaries(), ...(opts.binaries ?? {}) };
  for (const b of [binaries.etcd, binaries.kubeApiserver]) {
    if (!existsSync(b)) throw new Error(`${b} is not built: run scripts/build-kubernetes.sh`);
  }
  const timeoutMs = opts.startTimeoutMs ?? 120_000;
  const dir = mkdtempSync(join(tmpdir(), 'tortie-kube-apiserver-'));
  const procs: Proc[] = [];
  const stopAll = async () => {
    for (const p of procs.reverse()) await p.stop();
    procs.length = 0;
  };
  try {
    const pki = makeKubeApiserverPKI(join(dir, 'pki'));
    let etcd: { proc: Proc; endpoint: string } | undefined;
    let lastErr: unknown;
    for (let attempt = 0; attempt < 3 && !etcd; attempt++) {
      try {
        etcd = await startEtcdOnce(binaries.etcd, dir, timeoutMs);
      } catch (err) {
        lastErr = err;
        if (!/address already in use/.test(String(err))) break;
      }
    }
    if (!etcd) throw lastErr;
    procs.push(etcd.proc);
    let api: { proc: Proc; port: number; url: string } | undefined;
    for (let attempt = 0; attempt < 3 && !api; attempt++) {
      try {
        api = await startApiserverOnce(binaries.kubeApiserver, dir, etcd.endpoint, pki, opts, timeoutMs);
      } catch (err) {
        lastErr = err;
        if (!/address already in use/.test(String(err))) break;
      }
    }
    if (!api) throw lastErr;
    procs.push(api.proc);

    const kubeconfig = join(dir, 'admin.kubeconfig');
    writeKubeconfig(kubeconfig, api.url, pki.caFile, pki.adminCertFile, pki.adminKeyFile);
    const [etcdProc, apiProc] = [etcd.proc, api.proc];
    let stopped = false;
    return {
      url: api.url,
      port: api.port,
      kubeconfig,
      etcdEndpoint: etcd.endpoint,
      dir,
      pids: { etcd: etcdProc.pid, apiserver: apiProc.pid },
      pki,
      binaries,
      kubectl: (args, input) => runKubectl(binaries.kubectl, kubeconfig, args, input),
      logs: () => `--- kube-apiserver ---\n${apiProc.log().trim()}\n--- etcd ---\n${etcdProc.log().trim()}`,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await stopAll();
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      },
    };
  } catch (err) {
    await stopAll();
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    throw err;
  }
}

/** Runs `kubectl --kubeconfig <kubeconfig> ...args`; rejects with its output when it fails. */
export function runKubectl(kubectl: string, kubeconfig: string, args: string[], input?: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(kubectl, ['--kubeconfig', kubeconfig, ...args], { timeout: 60_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`kubectl ${args.join(' ')} failed (${err.message.split('\n')[0]}): ${stderr}${stdout}`));
        else resolve({ stdout, stderr });
      });
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}
