// bin/tortiectl connectivity/trace: refusals with clear messages (the checks themselves run on real
// clusters in lab/connectivity.test.ts and lab/connectivity-kube.test.ts).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCtl } from '../../testing/ipam-plugin-fixture.js';

describe('tortiectl connectivity and trace: bad input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tortiectl-conn-'));
  const env = { DATASTORE_TYPE: 'embedded', DATASTORE_PATH: join(dir, 'store.db') };
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('connectivity test needs the Kubernetes datastore and says where else to run it', async () => {
    const r = await runCtl(['connectivity', 'test'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /needs DATASTORE_TYPE=kubernetes \(the datastore is embedded\).*tortie-lab connectivity <lab>/);
    const u = await runCtl(['connectivity', 'run'], env);
    assert.equal(u.code, 1);
    assert.match(u.stderr, /connectivity needs: test \(got "run"\)/);
    const h = await runCtl(['connectivity', '--help'], env);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /pod→Service, full-size packets with DF set/);
  });

  it('trace refuses what is not NS/POD or an address, an unknown endpoint, a bad port', async () => {
    const cases: [string[], RegExp][] = [
      [['trace', 'default/a'], /Usage:\n {2}tortiectl trace <SRC> <DST>/],
      [['trace', 'bad!', 'default/b'], /source "bad!" is neither NS\/POD nor an IP address/],
      [['trace', 'default/a', 'default/b', '99999/TCP'], /port "99999\/TCP" must be PORT\/PROTO/],
      [['trace', 'default/zz', 'default/b'], /no workload endpoint default\/zz \(NS\/POD\) in the datastore/],
      [['trace', '10.9.9.9', 'default/b'], /no workload endpoint default\/b/],
      [['trace', 'default/a', 'default/b', '-o', 'yaml'], /-o: "yaml" is not json or table/],
    ];
    for (const [args, msg] of cases) {
      const r = await runCtl(args, env);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, msg, args.join(' '));
    }
  });
});
