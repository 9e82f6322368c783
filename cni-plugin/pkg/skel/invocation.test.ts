import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CniError } from './errors.js';
import { parseInvocation, type InvocationOptions } from './invocation.js';

const SUPPORTED = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

const BASE_ENV: Record<string, string | undefined> = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'abc123',
  CNI_NETNS: '/run/netns/ctr1',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin:/usr/lib/cni',
  CNI_ARGS: '',
};

function conf(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ cniVersion: '1.0.0', name: 'net1', type: 'tortie', ...extra });
}

interface BadCase {
  title: string;
  env?: Record<string, string | undefined>;
  stdin?: string;
  code: number;
  mentions: string[];
  opts?: InvocationOptions;
}

const without = (...keys: string[]): Record<string, undefined> => Object.fromEntries(keys.map((k) => [k, undefined]));

const BAD: BadCase[] = [
  { title: 'CNI_COMMAND missing', env: without('CNI_COMMAND'), code: 4, mentions: ['CNI_COMMAND'] },
  { title: 'CNI_COMMAND empty', env: { CNI_COMMAND: '' }, code: 4, mentions: ['CNI_COMMAND'] },
  { title: 'unknown command', env: { CNI_COMMAND: 'FOO' }, code: 4, mentions: ['CNI_COMMAND', '"FOO"'] },
  { title: 'lower-case command', env: { CNI_COMMAND: 'add' }, code: 4, mentions: ['CNI_COMMAND', '"add"'] },
  { title: 'ADD without CNI_CONTAINERID', env: without('CNI_CONTAINERID'), code: 4, mentions: ['CNI_CONTAINERID'] },
  { title: 'ADD without CNI_NETNS', env: without('CNI_NETNS'), code: 4, mentions: ['CNI_NETNS'] },
  { title: 'ADD without CNI_IFNAME', env: without('CNI_IFNAME'), code: 4, mentions: ['CNI_IFNAME'] },
  {
    title: 'ADD without all three',
    env: without('CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'),
    code: 4,
    mentions: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  },
  { title: 'ADD with empty CNI_CONTAINERID', env: { CNI_CONTAINERID: '' }, code: 4, mentions: ['CNI_CONTAINERID'] },
  { title: 'CHECK without CNI_NETNS', env: { CNI_COMMAND: 'CHECK', CNI_NETNS: '' }, code: 4, mentions: ['CNI_NETNS'] },
  { title: 'DEL without CNI_CONTAINERID', env: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: undefined }, code: 4, mentions: ['CNI_CONTAINERID'] },
  { title: 'DEL without CNI_IFNAME', env: { CNI_COMMAND: 'DEL', CNI_IFNAME: '' }, code: 4, mentions: ['CNI_IFNAME'] },
  { title: 'container ID starting with "-"', env: { CNI_CONTAINERID: '-abc' }, code: 4, mentions: ['CNI_CONTAINERID', '"-abc"'] },
  { title: 'container ID with "/"', env: { CNI_CONTAINERID: 'abc/def' }, code: 4, mentions: ['CNI_CONTAINERID', '"abc/def"'] },
  { title: 'container ID with a space', env: { CNI_CONTAINERID: 'abc def' }, code: 4, mentions: ['CNI_CONTAINERID', '"abc def"'] },
  { title: 'container ID starting with "."', env: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: '.hidden' }, code: 4, mentions: ['CNI_CONTAINERID', '".hidden"'] },
  { title: 'ifname of 16 characters', env: { CNI_IFNAME: 'abcdefghijklmnop' }, code: 4, mentions: ['CNI_IFNAME', '"abcdefghijklmnop"', '15'] },
  { title: 'ifname "."', env: { CNI_IFNAME: '.' }, code: 4, mentions: ['CNI_IFNAME', '"."'] },
  { title: 'ifname ".."', env: { CNI_IFNAME: '..' }, code: 4, mentions: ['CNI_IFNAME', '".."'] },
  { title: 'ifname with "/"', env: { CNI_IFNAME: 'eth/0' }, code: 4, mentions: ['CNI_IFNAME', '"eth/0"'] },
  { title: 'ifname with ":"', env: { CNI_IFNAME: 'eth0:1' }, code: 4, mentions: ['CNI_IFNAME', '"eth0:1"'] },
  { title: 'ifname with a space', env: { CNI_IFNAME: 'eth 0' }, code: 4, mentions: ['CNI_IFNAME', '"eth 0"', 'whitespace'] },
  { title: 'ifname with a tab (DEL)', env: { CNI_COMMAND: 'DEL', CNI_IFNAME: 'eth\t0' }, code: 4, mentions: ['CNI_IFNAME', 'whitespace'] },
  { title: 'CNI_ARGS pair without "="', env: { CNI_ARGS: 'K8S_POD_NAME=a;FOO' }, code: 4, mentions: ['CNI_ARGS', '"FOO"'] },
  { title: 'CNI_ARGS pair with empty key', env: { CNI_ARGS: '=bar' }, code: 4, mentions: ['CNI_ARGS', '"=bar"'] },
  { title: 'CNI_ARGS IgnoreUnknown not a boolean', env: { CNI_ARGS: 'IgnoreUnknown=maybe' }, code: 4, mentions: ['CNI_ARGS', 'IgnoreUnknown', '"maybe"'] },
  {
    title: 'CNI_ARGS unknown key without IgnoreUnknown',
    env: { CNI_ARGS: 'K8S_POD_NAME=p;COLOUR=blue' },
    opts: { knownArgs: ['K8S_POD_NAME', 'K8S_POD_NAMESPACE'] },
    code: 2,
    mentions: ['"COLOUR"', '"blue"'],
  },
  {
    title: 'CNI_ARGS unknown key with IgnoreUnknown=0',
    env: { CNI_ARGS: 'IgnoreUnknown=0;COLOUR=blue' },
    opts: { knownArgs: ['K8S_POD_NAME'] },
    code: 2,
    mentions: ['"COLOUR"', '"blue"'],
  },
  { title: 'stdin not JSON', stdin: '{"name": "net1",', code: 6, mentions: ['stdin', 'JSON'] },
  { title: 'stdin empty', stdin: '', code: 6, mentions: ['stdin', 'empty'] },
  { title: 'stdin whitespace only (DEL)', env: { CNI_COMMAND: 'DEL' }, stdin: ' \n', code: 6, mentions: ['stdin', 'empty'] },
  { title: 'stdin a JSON array', stdin: '[1,2]', code: 6, mentions: ['stdin', 'array'] },
  { title: 'stdin JSON null', stdin: 'null', code: 6, mentions: ['stdin', 'null'] },
  { title: 'stdin a JSON string', stdin: '"net1"', code: 6, mentions: ['stdin', 'string'] },
  { title: 'name missing', stdin: JSON.stringify({ cniVersion: '1.0.0', type: 't' }), code: 7, mentions: ['name'] },
  { title: 'name empty', stdin: conf({ name: '' }), code: 7, mentions: ['name'] },
  { title: 'name with a space', stdin: conf({ name: 'my net' }), code: 7, mentions: ['network name', '"my net"'] },
  { title: 'name starting with "_"', stdin: conf({ name: '_net' }), code: 7, mentions: ['network name', '"_net"'] },
  { title: 'name a number', stdin: conf({ name: 42 }), code: 7, mentions: ['network name', '42'] },
  { title: 'name with "/" (GC)', env: { CNI_COMMAND: 'GC' }, stdin: conf({ name: 'a/b', cniVersion: '1.1.0' }), code: 7, mentions: ['"a/b"'] },
  { title: 'unknown version', stdin: conf({ cniVersion: '9.9.9' }), code: 1, mentions: ['"9.9.9"', '1.0.0', '0.3.1'] },
  { title: 'unsupported old version', stdin: conf({ cniVersion: '0.2.0' }), code: 1, mentions: ['"0.2.0"', '1.1.0'] },
  { title: 'garbage version', stdin: conf({ cniVersion: 'one' }), code: 1, mentions: ['"one"'] },
  { title: 'cniVersion absent', stdin: JSON.stringify({ name: 'net1', type: 't' }), code: 1, mentions: ['cniVersion', '0.1.0'] },
  { title: 'cniVersion empty', stdin: conf({ cniVersion: '' }), code: 1, mentions: ['cniVersion', '0.1.0'] },
  { title: 'cniVersion a number', stdin: conf({ cniVersion: 1 }), code: 7, mentions: ['cniVersion', '1'] },
  { title: 'cniVersions not an array', stdin: conf({ cniVersions: '1.0.0' }), code: 7, mentions: ['cniVersions'] },
  { title: 'cniVersions with a number', stdin: conf({ cniVersions: ['1.0.0', 2] }), code: 7, mentions: ['cniVersions'] },
  {
    title: 'cniVersions none supported',
    stdin: JSON.stringify({ name: 'net1', cniVersions: ['2.0.0', '3.0.0'] }),
    code: 1,
    mentions: ['"2.0.0"', '"3.0.0"'],
  },
  { title: 'CHECK on a 0.3.1 config', env: { CNI_COMMAND: 'CHECK' }, stdin: conf({ cniVersion: '0.3.1' }), code: 1, mentions: ['"0.3.1"', 'CHECK'] },
  { title: 'GC on a 1.0.0 config', env: { CNI_COMMAND: 'GC' }, stdin: conf(), code: 1, mentions: ['"1.0.0"', 'GC'] },
  { title: 'STATUS on a 0.4.0 config', env: { CNI_COMMAND: 'STATUS' }, stdin: conf({ cniVersion: '0.4.0' }), code: 1, mentions: ['"0.4.0"', 'STATUS'] },
  { title: 'VERSION with non-JSON stdin', env: { CNI_COMMAND: 'VERSION' }, stdin: 'cniVersion=1.0.0', code: 6, mentions: ['stdin'] },
];

describe('parseInvocation rejects malformed invocations', () => {
  for (const c of BAD) {
    it(c.title, () => {
      const env = { ...BASE_ENV, ...c.env };
      assert.throws(
        () => parseInvocation(env, c.stdin ?? conf(), SUPPORTED, c.opts),
        (e: unknown) => {
          assert.ok(e instanceof CniError, `expected CniError, got ${String(e)}`);
          assert.equal(e.code, c.code, `code for: ${e.message}`);
          for (const m of c.mentions) assert.ok(e.message.includes(m), `message ${JSON.stringify(e.message)} should mention ${m}`);
          return true;
        },
      );
    });
  }

  it('has at least 20 cases', () => assert.ok(BAD.length >= 20));

  it('reports env problems before stdin problems (Go order)', () => {
    assert.throws(() => parseInvocation({ ...BASE_ENV, CNI_IFNAME: '' }, '{bad', SUPPORTED), { code: 4 });
    assert.throws(() => parseInvocation({ ...BASE_ENV, CNI_IFNAME: 'a/b' }, '{bad', SUPPORTED), { code: 4 });
  });

  it('reports the network name before the version', () => {
    assert.throws(() => parseInvocation(BASE_ENV, JSON.stringify({ cniVersion: '9.0.0' }), SUPPORTED), { code: 7 });
  });
});

describe('parseInvocation accepts valid invocations', () => {
  it('ADD: every field', () => {
    const stdin = conf({ capabilities: { portMappings: true }, runtimeConfig: { portMappings: [] }, 'cni.dev/x': 1 });
    const inv = parseInvocation(
      { ...BASE_ENV, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web-0;K8S_POD_NAMESPACE=default;IP=;B64=YQ==', PATH: '/usr/bin' },
      stdin,
      SUPPORTED,
    );
    assert.equal(inv.command, 'ADD');
    assert.equal(inv.containerId, 'abc123');
    assert.equal(inv.netns, '/run/netns/ctr1');
    assert.equal(inv.ifname, 'eth0');
    assert.deepEqual(inv.path, ['/opt/cni/bin', '/usr/lib/cni']);
    assert.deepEqual(
      [...inv.args],
      [
        ['IgnoreUnknown', '1'],
        ['K8S_POD_NAME', 'web-0'],
        ['K8S_POD_NAMESPACE', 'default'],
        ['IP', ''],
        ['B64', 'YQ=='],
      ],
    );
    assert.equal(inv.cniVersion, '1.0.0');
    assert.deepEqual(inv.config, JSON.parse(stdin));
    assert.equal(inv.stdin, stdin);
  });

  it('ADD: container IDs with dots, dashes and underscores; 15-char ifname', () => {
    const inv = parseInvocation({ ...BASE_ENV, CNI_CONTAINERID: 'default-ctr_1.x', CNI_IFNAME: 'abcdefghijklmno' }, conf(), SUPPORTED);
    assert.equal(inv.containerId, 'default-ctr_1.x');
    assert.equal(inv.ifname, 'abcdefghijklmno');
  });

  it('DEL: CNI_NETNS and CNI_PATH may be empty', () => {
    const inv = parseInvocation({ ...BASE_ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '', CNI_PATH: '' }, conf({ cniVersion: '0.3.1' }), SUPPORTED);
    assert.equal(inv.netns, '');
    assert.deepEqual(inv.path, []);
    assert.equal(inv.cniVersion, '0.3.1');
  });

  it('ADD: CNI_PATH is optional', () => {
    const inv = parseInvocation({ ...BASE_ENV, CNI_PATH: undefined }, conf(), SUPPORTED);
    assert.deepEqual(inv.path, []);
  });

  it('CHECK on 0.4.0', () => {
    assert.equal(parseInvocation({ ...BASE_ENV, CNI_COMMAND: 'CHECK' }, conf({ cniVersion: '0.4.0' }), SUPPORTED).command, 'CHECK');
  });

  it('STATUS and GC: libcni sends empty CONTAINERID/NETNS/IFNAME; CNI_PATH optional', () => {
    for (const command of ['STATUS', 'GC']) {
      const inv = parseInvocation(
        { CNI_COMMAND: command, CNI_CONTAINERID: '', CNI_NETNS: '', CNI_IFNAME: '', CNI_ARGS: '' },
        conf({ cniVersion: '1.1.0' }),
        SUPPORTED,
      );
      assert.equal(inv.command, command);
      assert.equal(inv.containerId, '');
      assert.equal(inv.cniVersion, '1.1.0');
    }
  });

  it('cniVersions: the highest supported of cniVersion ∪ cniVersions', () => {
    const stdin = conf({ cniVersion: '0.4.0', cniVersions: ['0.4.0', '1.0.0', '1.1.0', '2.0.0'] });
    assert.equal(parseInvocation(BASE_ENV, stdin, SUPPORTED).cniVersion, '1.1.0');
    assert.equal(parseInvocation(BASE_ENV, stdin, ['0.3.1', '0.4.0', '1.0.0']).cniVersion, '1.0.0');
    const noSingle = JSON.stringify({ name: 'n', cniVersions: ['0.3.1', '1.0.0'] });
    assert.equal(parseInvocation(BASE_ENV, noSingle, SUPPORTED).cniVersion, '1.0.0');
  });

  it('VERSION: needs no other env and may have empty stdin', () => {
    const inv = parseInvocation({ CNI_COMMAND: 'VERSION' }, '', SUPPORTED);
    assert.equal(inv.command, 'VERSION');
    assert.equal(inv.cniVersion, '');
    assert.deepEqual(inv.config, {});
  });

  it('VERSION: reports the requested version even when unsupported; ignores bad env', () => {
    const inv = parseInvocation(
      { CNI_COMMAND: 'VERSION', CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy', CNI_PATH: 'dummy', CNI_CONTAINERID: '/bad', CNI_ARGS: 'garbage' },
      '{"cniVersion":"2.0.0"}',
      SUPPORTED,
    );
    assert.equal(inv.cniVersion, '2.0.0');
    assert.equal(inv.args.size, 0);
  });

  it('CNI_ARGS: IgnoreUnknown lets unknown keys through; empty segments are skipped', () => {
    const inv = parseInvocation(
      { ...BASE_ENV, CNI_ARGS: 'IgnoreUnknown=true;;K8S_POD_NAME=p;COLOUR=blue;' },
      conf(),
      SUPPORTED,
      { knownArgs: ['K8S_POD_NAME'] },
    );
    assert.equal(inv.args.get('COLOUR'), 'blue');
    assert.equal(inv.args.size, 3);
  });

  it('CNI_ARGS: without knownArgs, unknown keys are accepted', () => {
    const inv = parseInvocation({ ...BASE_ENV, CNI_ARGS: 'COLOUR=blue' }, conf(), SUPPORTED);
    assert.equal(inv.args.get('COLOUR'), 'blue');
  });
});
