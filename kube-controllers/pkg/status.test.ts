import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { StatusFile, checkLiveness, checkReadiness } from './status.js';

const dir = mkdtempSync(join(tmpdir(), 'tortie-kc-status-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('status file and check-status', () => {
  it('ready when every component is; not ready names each reason; liveness needs a fresh file', () => {
    let now = new Date('2026-01-01T00:00:00Z');
    const path = join(dir, 'a', 'status.json');
    const s = new StatusFile(path, 5000, () => now);
    s.set('KubeAPIServer', false, 'starting');
    s.set('CalicoDatastore', true);
    const t = now.getTime();
    assert.deepEqual(checkLiveness(path, t), { ok: true, message: 'live' });
    assert.deepEqual(checkReadiness(path, t), { ok: false, message: 'not ready: KubeAPIServer: starting' });
    s.set('KubeAPIServer', true);
    assert.deepEqual(checkReadiness(path, t), { ok: true, message: 'ready' });
    s.set('KubeAPIServer', false, 'Kubernetes API server https://127.0.0.1:1 unreachable: ECONNREFUSED');
    assert.match(checkReadiness(path, t).message, /KubeAPIServer: Kubernetes API server .* unreachable: ECONNREFUSED/);
    // No heartbeat for more than three periods: neither live nor ready.
    assert.match(checkLiveness(path, t + 15_001).message, /not live: status file last written 15s ago/);
    assert.equal(checkReadiness(path, t + 15_001).ok, false);
    now = new Date(t + 20_000);
    s.write();
    assert.equal(checkLiveness(path, t + 20_000).ok, true);
  });

  it('a missing or broken file is neither live nor ready, with the reason', () => {
    assert.match(checkLiveness(join(dir, 'missing.json')).message, /cannot read status file/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"x":1}');
    assert.match(checkReadiness(bad).message, /is not a status document/);
  });
});
