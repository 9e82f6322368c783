// Liveness and readiness as calico-kube-controllers reports them: a status file the process keeps
// up to date and `check-status -l` / `-r` read (the Deployment's exec probes). Each component
// (e.g. KubeAPIServer, IPAMGarbageCollector) says whether it is ready and why not; the process
// rewrites the file on every change and at least every `heartbeatMs`, so a wedged process (no
// heartbeat) reads as not live while one that only lost the API server stays live and not ready.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface ComponentStatus {
  ready: boolean;
  /** Why not ready (empty when ready). */
  reason: string;
  /** When this component last changed (ISO). */
  since: string;
}

export interface StatusDocument {
  /** When the process last wrote the file (ISO). */
  updated: string;
  pid: number;
  /** The longest time between writes (ms); a file older than this (×3) is a dead process. */
  heartbeatMs: number;
  /**
   * Earlier processes that wrote this file: the container's restarts within its pod (the file is
   * on an emptyDir, which lives as long as the pod), counted at each start.
   */
  restarts?: number;
  /** When this process started (ISO). */
  started?: string;
  readiness: Record<string, ComponentStatus>;
}

export class StatusFile {
  private readonly readiness: Record<string, ComponentStatus> = {};
  private timer: NodeJS.Timeout | undefined;
  /** Processes that wrote this file before this one (0 for the first). */
  restarts = 0;
  private started = '';
  /** Called on every readiness change (e.g. to set a metric). */
  onChange: ((component: string, s: ComponentStatus) => void) | undefined;

  constructor(
    readonly path: string,
    private readonly heartbeatMs = 5000,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Records a component's readiness (written at once when it changed). */
  set(component: string, ready: boolean, reason = ''): void {
    const cur = this.readiness[component];
    if (cur && cur.ready === ready && cur.reason === reason) return;
    this.readiness[component] = { ready, reason: ready ? '' : reason, since: this.now().toISOString() };
    this.onChange?.(component, this.readiness[component]);
    this.write();
  }

  get(component: string): ComponentStatus | undefined {
    return this.readiness[component];
  }

  /** Writes the file (atomically: a probe never reads half a file). */
  write(): void {
    const doc: StatusDocument = {
      updated: this.now().toISOString(),
      pid: process.pid,
      heartbeatMs: this.heartbeatMs,
      restarts: this.restarts,
      started: this.started,
      readiness: this.readiness,
    };
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(doc, null, 2) + '\n');
    renameSync(tmp, this.path);
  }

  /** Counts the restart (an earlier process's file: call before any set()), then rewrites the file every heartbeat until stop(). */
  start(): void {
    // A file left by an earlier process of this pod: one more restart.
    const prev = readDoc(this.path);
    if (typeof prev !== 'string' && prev.pid !== process.pid) this.restarts = (prev.restarts ?? 0) + 1;
    this.started = this.now().toISOString();
    this.write();
    this.timer = setInterval(() => {
      try {
        this.write();
      } catch {
        // a full or read-only disk: the probe then sees a stale file, as it should
      }
    }, this.heartbeatMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

export interface CheckResult {
  ok: boolean;
  message: string;
}

function readDoc(path: string): StatusDocument | string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return `cannot read status file ${path}: ${(e as Error).message}`;
  }
  try {
    const d = JSON.parse(text) as StatusDocument;
    if (typeof d.updated !== 'string' || typeof d.readiness !== 'object' || d.readiness === null) throw new Error('missing updated/readiness');
    return d;
  } catch (e) {
    return `status file ${path} is not a status document: ${(e as Error).message}`;
  }
}

/** `check-status -l`: live when the file was written within three heartbeats. */
export function checkLiveness(path: string, nowMs = Date.now()): CheckResult {
  const d = readDoc(path);
  if (typeof d === 'string') return { ok: false, message: d };
  const age = nowMs - Date.parse(d.updated);
  const limit = 3 * (d.heartbeatMs || 5000);
  if (!(age <= limit)) return { ok: false, message: `not live: status file last written ${Math.round(age / 1000)}s ago (limit ${limit / 1000}s)` };
  return { ok: true, message: 'live' };
}

/** `check-status -r`: ready when live and every component is ready; else the reasons. */
export function checkReadiness(path: string, nowMs = Date.now()): CheckResult {
  const live = checkLiveness(path, nowMs);
  if (!live.ok) return live;
  const d = readDoc(path) as StatusDocument;
  const names = Object.keys(d.readiness).sort();
  if (names.length === 0) return { ok: false, message: 'not ready: no component has reported yet' };
  const bad = names.filter((n) => !d.readiness[n]?.ready);
  if (bad.length > 0) return { ok: false, message: `not ready: ${bad.map((n) => `${n}: ${d.readiness[n]?.reason || 'not ready'}`).join('; ')}` };
  return { ok: true, message: 'ready' };
}
