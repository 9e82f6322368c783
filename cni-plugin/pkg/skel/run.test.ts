import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CniError } from './errors.js';
import type { GcAttachment } from './gc.js';
import type { Invocation } from './invocation.js';
import { executePlugin, type PluginHandlers } from './run.js';

const SUPPORTED = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
const ENV = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '', CNI_ARGS: '' };
const conf = (v = '1.0.0', extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: v, name: 'net1', type: 't', ...extra });

function handlers(log: string[]): PluginHandlers {
  return {
    add: (inv: Invocation) => {
      log.push(`add ${inv.containerId}`);
      return {
        interfaces: [{ name: inv.ifname, sandbox: inv.netns }],
        ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }],
      };
    },
    del: (inv: Invocation) => {
      log.push(`del ${inv.containerId}`);
    },
    status: async () => {
      throw new CniError(50, 'datastore unreachable');
    },
    gc: (_inv: Invocation, valid: GcAttachment[] | null) => {
      log.push(`gc ${JSON.stringify(valid)}`);
    },
  };
}

describe('executePlugin', () => {
  it('ADD prints the result in the config version', async () => {
    const log: string[] = [];
    const out = await executePlugin(handlers(log), SUPPORTED, ENV, conf('0.3.1'));
    assert.equal(out.exitCode, 0);
    assert.equal(
      out.stdout,
      '{"cniVersion":"0.3.1","interfaces":[{"name":"eth0","sandbox":"/run/netns/x"}],"ips":[{"version":"4","interface":0,"address":"10.0.0.2/24","gateway":"10.0.0.1"}],"dns":{}}\n',
    );
    assert.deepEqual(log, ['add c1']);
  });

  it('ADD abbreviated for IPAM plugins', async () => {
    const out = await executePlugin(handlers([]), SUPPORTED, ENV, conf('1.0.0'), { abbreviatedResult: true });
    assert.equal(out.stdout, '{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24","gateway":"10.0.0.1"}],"dns":{}}\n');
  });

  it('DEL prints nothing', async () => {
    const log: string[] = [];
    const out = await executePlugin(handlers(log), SUPPORTED, { ...ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, conf());
    assert.deepEqual(out, { stdout: '', exitCode: 0 });
    assert.deepEqual(log, ['del c1']);
  });

  it('CHECK without a handler succeeds silently', async () => {
    const out = await executePlugin(handlers([]), SUPPORTED, { ...ENV, CNI_COMMAND: 'CHECK' }, conf());
    assert.deepEqual(out, { stdout: '', exitCode: 0 });
  });

  it('invocation errors: error JSON, no cniVersion, exit 1, handler not called', async () => {
    const log: string[] = [];
    const out = await executePlugin(handlers(log), SUPPORTED, { ...ENV, CNI_IFNAME: 'a:b' }, conf());
    assert.equal(out.exitCode, 1);
    const j = JSON.parse(out.stdout);
    assert.equal(j.code, 4);
    assert.match(j.msg, /CNI_IFNAME "a:b"/);
    assert.equal('cniVersion' in j, false);
    assert.deepEqual(log, []);
  });

  it('handler CniErrors keep their code and carry the config version', async () => {
    const out = await executePlugin(handlers([]), SUPPORTED, { CNI_COMMAND: 'STATUS' }, conf('1.1.0'));
    assert.equal(out.exitCode, 1);
    assert.deepEqual(JSON.parse(out.stdout), { cniVersion: '1.1.0', code: 50, msg: 'datastore unreachable' });
  });

  it('plain errors from handlers become code 999', async () => {
    const h = { ...handlers([]), add: () => Promise.reject(new Error('failed to open netns "/run/netns/nope"')) };
    const out = await executePlugin(h, SUPPORTED, ENV, conf());
    assert.deepEqual(JSON.parse(out.stdout), { cniVersion: '1.0.0', code: 999, msg: 'failed to open netns "/run/netns/nope"' });
  });

  it('a bad result from ADD becomes code 999, not a half-written result', async () => {
    const h = { ...handlers([]), add: () => ({ ips: [{ address: '10.0.0.2' }] }) };
    const out = await executePlugin(h, SUPPORTED, ENV, conf());
    assert.equal(out.exitCode, 1);
    assert.equal(JSON.parse(out.stdout).code, 999);
  });

  it('VERSION', async () => {
    const out = await executePlugin(handlers([]), SUPPORTED, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}');
    assert.equal(out.stdout, '{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n');
    const none = await executePlugin(handlers([]), SUPPORTED, { CNI_COMMAND: 'VERSION' }, '');
    assert.equal(JSON.parse(none.stdout).cniVersion, '1.1.0');
  });

  it('GC passes the parsed attachments (null when absent)', async () => {
    const log: string[] = [];
    const env = { CNI_COMMAND: 'GC', CNI_PATH: '' };
    await executePlugin(handlers(log), SUPPORTED, env, conf('1.1.0'));
    await executePlugin(handlers(log), SUPPORTED, env, conf('1.1.0', { 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }] }));
    assert.deepEqual(log, ['gc null', 'gc [{"containerID":"a","ifname":"eth0"}]']);
  });
});

describe('runPlugin in a real process', () => {
  let dir = '';
  let plugin = '';

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-skel-'));
    plugin = join(dir, 'noisy-plugin');
    const index = new URL('./index.js', import.meta.url).href;
    writeFileSync(
      plugin,
      `#!${process.execPath}
import { runPlugin, CniError } from ${JSON.stringify(index)};
runPlugin({
  add(inv) {
    console.log('this must not reach stdout');
    console.info('nor this');
    process.stderr.write('a log line on stderr\\n');
    if (inv.config.fail === 'cni') throw new CniError(11, 'try again later', 'ipam datastore locked');
    if (inv.config.fail === 'plain') throw new Error('kaboom');
    setInterval(() => {}, 1000); // a stray handle must not keep the process alive
    return { interfaces: [{ name: inv.ifname, sandbox: inv.netns }], ips: [{ address: '192.0.2.7/24', interface: 0 }] };
  },
  del() {},
}, ['0.3.1', '0.4.0', '1.0.0']);
`,
    );
    chmodSync(plugin, 0o755);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  const run = (env: Record<string, string>, input: string) =>
    spawnSync(plugin, [], { env: { PATH: '/usr/bin:/bin', ...env }, input, encoding: 'utf8', timeout: 20_000 });

  it('ADD: stdout is exactly the result JSON; console output goes to stderr', () => {
    const r = run(ENV, conf('0.4.0'));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      '{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/x"}],"ips":[{"version":"4","interface":0,"address":"192.0.2.7/24"}],"dns":{}}\n',
    );
    assert.match(r.stderr, /this must not reach stdout/);
    assert.match(r.stderr, /a log line on stderr/);
  });

  it('errors: error JSON on stdout, non-zero exit', () => {
    const r1 = run(ENV, conf('1.0.0', { fail: 'cni' }));
    assert.notEqual(r1.status, 0);
    assert.deepEqual(JSON.parse(r1.stdout), { cniVersion: '1.0.0', code: 11, msg: 'try again later', details: 'ipam datastore locked' });
    const r2 = run(ENV, conf('1.0.0', { fail: 'plain' }));
    assert.notEqual(r2.status, 0);
    assert.deepEqual(JSON.parse(r2.stdout), { cniVersion: '1.0.0', code: 999, msg: 'kaboom' });
    const r3 = run({ ...ENV, CNI_COMMAND: 'ADD' }, conf('1.1.0'));
    assert.notEqual(r3.status, 0);
    assert.equal(JSON.parse(r3.stdout).code, 1);
  });

  it('VERSION with libcni-style probe env', () => {
    const r = run({ CNI_COMMAND: 'VERSION', CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy', CNI_PATH: 'dummy', CNI_CONTAINERID: '', CNI_ARGS: '' }, '{"cniVersion":"1.1.0"}');
    assert.equal(r.status, 0);
    assert.equal(r.stdout, '{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}\n');
  });

  it('DEL: empty stdout, exit 0', () => {
    const r = run({ ...ENV, CNI_COMMAND: 'DEL' }, conf());
    assert.equal(r.status, 0);
    assert.equal(r.stdout, '');
  });
});
