// A recording wrapper for CNI plugins: a /bin/sh script named like the plugin that saves what the
// runtime passed (environment, stdin), runs the real plugin with the same stdin, saves its stdout and
// exit code, and returns both unchanged. Put its directory first in a rig's binDirs to see exactly what
// containerd (ctr) or podman sends, and what the plugin answered.

import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RecordedCall {
  /** Which wrapper recorded it (the plugin type). */
  plugin: string;
  /** Arrival order key: "<ns since epoch>-<pid>". */
  seq: string;
  /** The full environment the plugin got. */
  env: Record<string, string>;
  command: string;
  /** stdin text (the network configuration). */
  stdin: string;
  /** stdin parsed as JSON, or null. */
  config: Record<string, unknown> | null;
  /** What the real plugin printed on stdout. */
  stdout: string;
  /** The real plugin's exit code (null if it did not finish). */
  rc: number | null;
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Writes `<binDir>/<name>` that records into `<logDir>` then execs `realPlugin`.
 * Returns the wrapper's path.
 */
export function writeRecorder(binDir: string, name: string, realPlugin: string, logDir: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`bad plugin name ${name}`);
  if (!existsSync(realPlugin)) throw new Error(`${realPlugin} missing`);
  mkdirSync(binDir, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const p = join(binDir, name);
  writeFileSync(
    p,
    [
      '#!/bin/sh',
      '# Written by testing/runtimes/recorder.ts: records a CNI call, then runs the real plugin.',
      `d=${shQuote(logDir)}`,
      `n="$(date +%s%N)-$$-${name}"`,
      'env > "$d/$n.env"',
      'cat > "$d/$n.stdin"',
      `${shQuote(realPlugin)} < "$d/$n.stdin" > "$d/$n.stdout"`,
      'rc=$?',
      'cat "$d/$n.stdout"',
      'echo "$rc" > "$d/$n.rc"',
      'exit "$rc"',
      '',
    ].join('\n'),
  );
  chmodSync(p, 0o755);
  return p;
}

/** All recorded calls in `logDir`, oldest first. */
export function readRecords(logDir: string): RecordedCall[] {
  if (!existsSync(logDir)) return [];
  const keys = [...new Set(readdirSync(logDir).filter((f) => f.endsWith('.env')).map((f) => f.slice(0, -4)))];
  keys.sort((a, b) => {
    const na = BigInt(a.split('-')[0]!);
    const nb = BigInt(b.split('-')[0]!);
    return na < nb ? -1 : na > nb ? 1 : a < b ? -1 : 1;
  });
  const read = (k: string, ext: string): string | null => {
    try {
      return readFileSync(join(logDir, `${k}.${ext}`), 'utf8');
    } catch {
      return null;
    }
  };
  return keys.map((k) => {
    const env: Record<string, string> = {};
    for (const line of (read(k, 'env') ?? '').split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) env[line.slice(0, i)] = line.slice(i + 1);
    }
    const stdin = read(k, 'stdin') ?? '';
    let config: Record<string, unknown> | null = null;
    try {
      config = JSON.parse(stdin) as Record<string, unknown>;
    } catch {
      config = null;
    }
    const rcText = read(k, 'rc');
    const parts = k.split('-');
    return {
      plugin: parts.slice(2).join('-'),
      seq: `${parts[0]}-${parts[1]}`,
      env,
      command: env.CNI_COMMAND ?? '',
      stdin,
      config,
      stdout: read(k, 'stdout') ?? '',
      rc: rcText === null ? null : Number(rcText.trim()),
    };
  });
}
