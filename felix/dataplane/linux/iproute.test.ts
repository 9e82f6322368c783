import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  checkBatchWord,
  CommandError,
  IpRoute,
  IP_BIN,
  isCurrentNetns,
  isValidIfName,
  listInterfaceNames,
  netnsNameOf,
  NSENTER_BIN,
  parseJsonValues,
  readSysctl,
  spawnExec,
  sysctlPath,
  SYSCTL_BIN,
  type Exec,
} from './iproute.js';

const isRoot = process.getuid?.() === 0;

describe('iproute: pure helpers', () => {
  it('parses concatenated JSON values as ip -j -batch prints them', () => {
    const text = '[{"a":"x]y","b":"q\\"[{"}]\n[]\n[{"c":[1,[2]]}]\n';
    assert.deepEqual(parseJsonValues(text), [[{ a: 'x]y', b: 'q"[{' }], [], [{ c: [1, [2]] }]]);
    assert.deepEqual(parseJsonValues(''), []);
    assert.throws(() => parseJsonValues('[{"a":1}'), /truncated/);
  });

  it('validates batch words and interface names', () => {
    for (const ok of ['eth0', '10.0.0.1/32', 'fe80::1', '/proc/12/ns/net']) checkBatchWord(ok);
    for (const bad of ['', 'a b', 'a\nb', '"x"', "x'", 'a#b', 'a\\b']) assert.throws(() => checkBatchWord(bad), TypeError);
    for (const ok of ['eth0', 'cali12345678901', 'eth0.100', 'a-b_c']) assert.ok(isValidIfName(ok), ok);
    for (const bad of ['', '.', '..', 'cali123456789012', 'a/b', 'a:b', 'a b', 'x#']) assert.ok(!isValidIfName(bad), bad);
  });

  it('turns sysctl keys into /proc/sys paths', () => {
    assert.equal(sysctlPath('net.ipv4.ip_forward'), 'net/ipv4/ip_forward');
    assert.equal(sysctlPath('net/ipv4/conf/eth0.100/proxy_arp'), 'net/ipv4/conf/eth0.100/proxy_arp');
    for (const bad of ['net/../x', 'net//x', '/net/x', 'net/x y', 'a=b']) assert.throws(() => sysctlPath(bad), TypeError, bad);
  });

  it('builds argv and batch input without a shell; maps a failed batch line', async () => {
    const calls: { file: string; args: readonly string[]; input?: string }[] = [];
    const fake: Exec = async (file, args, input) => {
      calls.push({ file, args, input });
      if (input?.includes('bad')) return { code: 1, signal: null, stdout: '', stderr: 'Error: bad thing.\nCommand failed -:2\n' };
      return { code: 0, signal: null, stdout: '[{"ifname":"lo"}]\n[]\n', stderr: '' };
    };
    const ip = new IpRoute(fake);
    assert.deepEqual(await ip.batchJson([['link', 'show'], ['route', 'show']], { family: 4 }), [[{ ifname: 'lo' }], []]);
    assert.deepEqual(calls[0], { file: IP_BIN, args: ['-4', '-j', '-batch', '-'], input: 'link show\nroute show\n' });
    await ip.run(['link', 'show'], { netns: '/proc/1234/ns/net', details: true });
    assert.deepEqual(calls[1].file, NSENTER_BIN);
    assert.deepEqual(calls[1].args, ['--net=/proc/1234/ns/net', IP_BIN, '-d', 'link', 'show']);
    await ip.sysctl([['net.ipv4.ip_forward', 0], ['net/ipv6/conf/eth0.1/accept_dad', 0]], '/proc/1234/ns/net');
    assert.deepEqual(calls[2], {
      file: NSENTER_BIN,
      args: ['--net=/proc/1234/ns/net', SYSCTL_BIN, '-q', '-w', 'net/ipv4/ip_forward=0', 'net/ipv6/conf/eth0.1/accept_dad=0'],
      input: undefined,
    });
    const err = await ip.batch([['link', 'show'], ['bad', 'cmd'], ['link', 'show']]).then(
      () => assert.fail('no error'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CommandError);
    assert.deepEqual(err.failed, { index: 1, command: ['bad', 'cmd'] });
    assert.match(err.message, /\/usr\/sbin\/ip -batch - \[batch line 2: bad cmd\] failed \(exit 1\): Error: bad thing\.$/);
    await assert.rejects(ip.batch([['link', 'show', 'dev', 'a b']]), TypeError);
    assert.throws(() => ip.argv(['link'], 'relative/path'), TypeError);
  });

  it('knows its own namespace and lists interfaces without a process', () => {
    assert.ok(isCurrentNetns('/proc/self/ns/net'));
    assert.ok(!isCurrentNetns('/nonexistent/netns'));
    assert.ok(listInterfaceNames().includes('lo'));
    assert.match(readSysctl('net/ipv4/ip_forward') ?? '', /^[01]$/);
    assert.equal(readSysctl('net/ipv4/conf/nonexistent-if/proxy_arp'), null);
  });
});

describe('iproute: real ip in a scratch namespace', { skip: isRoot ? false : 'needs root (network namespaces)' }, () => {
  const name = `tortie-t${randomBytes(4).toString('hex')}-ipr`;
  const path = `/run/netns/${name}`;
  let sleeper: ChildProcess | undefined;
  const ip = new IpRoute(spawnExec());

  before(() => {
    const r = spawnSync(IP_BIN, ['netns', 'add', name], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => {
    if (sleeper?.pid !== undefined && sleeper.exitCode === null) process.kill(sleeper.pid, 'SIGKILL');
    spawnSync(IP_BIN, ['netns', 'del', name]);
  });

  it('uses ip -n for /run/netns paths and reads JSON', async () => {
    assert.equal(netnsNameOf(path), name);
    assert.equal(netnsNameOf('/proc/1/ns/net'), null);
    assert.deepEqual(ip.argv(['link'], path), [IP_BIN, '-n', name, 'link']);
    const links = await ip.json<{ ifname: string }[]>(['link', 'show'], { netns: path });
    assert.deepEqual(
      links.map((l) => l.ifname),
      ['lo'],
    );
    assert.ok(!isCurrentNetns(path));
  });

  it('runs a batch in the namespace; an error names the line and carries stderr', async () => {
    await ip.batch([['link', 'set', 'dev', 'lo', 'up'], ['addr', 'add', '127.0.0.2/8', 'dev', 'lo']], { netns: path });
    const [addrs] = (await ip.batchJson([['addr', 'show', 'dev', 'lo']], { netns: path })) as { addr_info: { local: string }[] }[][];
    assert.ok(addrs[0].addr_info.some((a) => a.local === '127.0.0.2'));
    const err = await ip.batch([['link', 'show', 'dev', 'lo'], ['link', 'del', 'dev', 'nope0']], { netns: path }).then(
      () => assert.fail('no error'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CommandError);
    assert.equal(err.failed?.index, 1);
    assert.ok(err.notFound, err.message);
    assert.match(err.message, /nope0/);
  });

  it('survives ip exiting before reading all of stdin', async () => {
    const cmds = [['link', 'del', 'dev', 'nope0'], ...Array.from({ length: 20000 }, () => ['link', 'show', 'dev', 'lo'])];
    await assert.rejects(ip.batch(cmds, { netns: path }), (e: unknown) => e instanceof CommandError && e.failed?.index === 0);
  });

  it('reaches a namespace given as /proc/<pid>/ns/net through nsenter, and sets sysctls there', async () => {
    sleeper = spawn(IP_BIN, ['netns', 'exec', name, '/usr/bin/sleep', '60'], { stdio: 'ignore' });
    const pidPath = `/proc/${sleeper.pid}/ns/net`;
    // Wait until ip netns exec has switched namespaces (its exec of sleep follows setns).
    for (let i = 0; i < 100 && !(await isIn(pidPath, path)); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(await isIn(pidPath, path), 'sleeper did not enter the namespace');
    assert.equal(ip.argv(['link'], pidPath)[0], NSENTER_BIN);
    const links = await ip.json<{ ifname: string }[]>(['link', 'show'], { netns: pidPath });
    assert.deepEqual(
      links.map((l) => l.ifname),
      ['lo'],
    );
    for (const v of [1, 0]) {
      await ip.sysctl([['net/ipv4/ip_forward', v]], pidPath);
      const r = spawnSync(IP_BIN, ['netns', 'exec', name, '/usr/bin/cat', '/proc/sys/net/ipv4/ip_forward'], { encoding: 'utf8' });
      assert.equal(r.stdout.trim(), String(v));
    }
    await assert.rejects(ip.sysctl([['net/ipv4/conf/nope0/proxy_arp', 1]], pidPath), CommandError);
  });
});

async function isIn(a: string, b: string): Promise<boolean> {
  const { statSync } = await import('node:fs');
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.ino === y.ino && x.dev === y.dev;
  } catch {
    return false;
  }
}
