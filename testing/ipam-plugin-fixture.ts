// Test fixture: runs bin/tortie-ipam as a runtime would (clean env, config on stdin) against a
// store the test owns, embedded or a real etcd.
import { spawn, type ChildProcess } from 'node:child_process';
import { execPlugin } from './cni-harness.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../libcalico-go/lib/backend/api.js';
import { openEmbedded } from '../libcalico-go/lib/backend/embedded/embedded.js';
import { openEtcdV3 } from '../libcalico-go/lib/backend/etcdv3/etcdv3.js';
import { startEtcd, type TestEtcd } from './etcd.js';

export const ROOT = new URL('../../', import.meta.url).pathname;
export const IPAM_BIN = join(ROOT, 'bin/tortie-ipam');
export const CTL_BIN = join(ROOT, 'bin/tortiectl');

export interface CniRun {
  code: number | null;
  stdout: string;
  stderr: string;
  json: any;
}

export interface CniCall {
  command: string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  config: string;
  /** Extra environment; undefined removes a variable. */
  env?: Record<string, string | undefined>;
  /** Receives the child right after spawn (to kill it in tests). */
  onSpawn?: (c: ChildProcess) => void;
}

/** One plugin call through the libcni-like harness, with CNI_PATH set as runtimes set it. */
export async function runCni(bin: string, call: CniCall): Promise<CniRun> {
  const r = await execPlugin(bin, {
    command: call.command,
    containerId: call.containerId,
    netns: call.netns,
    ifname: call.ifname,
    args: call.args,
    cniPath: '/usr/lib/cni',
    stdinConfig: call.config,
    env: call.env,
    onSpawn: call.onSpawn,
    timeoutMs: 120_000,
  });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, json: r.json };
}

export function runCtl(args: string[], env: Record<string, string>, stdin = ''): Promise<CniRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(CTL_BIN, args, { env: { ...env, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, json: null }));
    child.stdin.end(stdin);
  });
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}

export interface StoreFixture {
  kind: 'embedded' | 'etcdv3';
  /** Top-level conflist fields that select this store. */
  confFields: Record<string, string>;
  /** Environment for tortiectl. */
  ctlEnv: Record<string, string>;
  open(): Promise<Backend>;
  stop(): Promise<void>;
}

export async function makeStore(kind: 'embedded' | 'etcdv3'): Promise<StoreFixture> {
  if (kind === 'embedded') {
    const dir = mkdtempSync(join(tmpdir(), 'tortie-ipam-it-'));
    const path = join(dir, 'datastore.db');
    return {
      kind,
      confFields: { datastore_type: 'embedded', datastore_path: path },
      ctlEnv: { DATASTORE_TYPE: 'embedded', DATASTORE_PATH: path },
      open: async () => openEmbedded(path),
      stop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const etcd: TestEtcd = await startEtcd();
  const endpoints = etcd.endpoints.join(',');
  return {
    kind,
    confFields: { datastore_type: 'etcdv3', etcd_endpoints: endpoints },
    ctlEnv: { DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: endpoints },
    open: async () => openEtcdV3({ endpoints: etcd.endpoints }),
    stop: () => etcd.stop(),
  };
}
