import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatastoreError, UnavailableError, type WatchEvent } from '../api.js';
import { backendContract } from '../../../../testing/backend-contract.js';
import { makeTestPKI } from '../../../../testing/certs.js';
import { freePort, startEtcd, type TestEtcd } from '../../../../testing/etcd.js';
import { type EtcdV3Backend, openEtcdV3, prefixRangeEnd } from './etcdv3.js';

const MODULE = new URL('./etcdv3.js', import.meta.url).href;

let etcd: TestEtcd;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.stop();
});

backendContract('etcdv3', async () => openEtcdV3({ endpoints: etcd.endpoints }), {
  child: () => ({ module: MODULE, exportName: 'openEtcdV3', args: [{ endpoints: etcd.endpoints }] }),
  compact: (b, rev) => (b as EtcdV3Backend).compact(rev),
  increments: 50,
});

interface FakeServer {
  url: string;
  server: Server;
  conns: number;
  sockets: Set<Socket>;
}

/** A local TCP server with a chosen misbehaviour, on a loopback port. */
async function fakeServer(onConn: (s: Socket) => void): Promise<FakeServer> {
  const state: FakeServer = { url: '', server: createServer(), conns: 0, sockets: new Set() };
  state.server.on('connection', (s) => {
    state.conns++;
    state.sockets.add(s);
    s.on('close', () => state.sockets.delete(s));
    onConn(s);
  });
  await new Promise<void>((r) => state.server.listen(0, '127.0.0.1', r));
  const addr = state.server.address();
  state.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return state;
}

function closeServer(f: FakeServer): Promise<void> {
  // Sockets nobody reads never notice the client left, so close() would wait for them forever.
  for (const s of f.sockets) s.destroy();
  return new Promise((r) => f.server.close(() => r()));
}

async function rejectsUnavailable(p: Promise<unknown>, mustMention: (string | RegExp)[]): Promise<Error> {
  let err: Error | undefined;
  await assert.rejects(p, (e: unknown) => {
    err = e as Error;
    assert.ok(e instanceof UnavailableError, `expected UnavailableError, got ${(e as Error).name}: ${(e as Error).message}`);
    for (const m of mustMention) {
      if (typeof m === 'string') assert.ok(err.message.includes(m), `"${err.message}" mentions ${m}`);
      else assert.match(err.message, m);
    }
    return true;
  });
  return err!;
}

describe('etcdv3 backend', () => {
  it('prefixRangeEnd follows etcd: bump the last byte below 0xff', () => {
    assert.deepEqual(prefixRangeEnd('/a/'), Buffer.from('/a0'));
    assert.deepEqual(prefixRangeEnd(''), Buffer.from([0]));
    assert.deepEqual(prefixRangeEnd('a\u00ff'), Buffer.from([0x61, 0xc3, 0xc0])); // UTF-8 c3 bf -> c3 c0
  });

  it('rejects malformed endpoints and unreadable certificate files, naming them', () => {
    assert.throws(() => openEtcdV3({ endpoints: ['127.0.0.1:2379'] }), /127\.0\.0\.1:2379/);
    assert.throws(() => openEtcdV3({ endpoints: [] }), /no etcd endpoints/);
    assert.throws(() => openEtcdV3({ endpoints: ['https://127.0.0.1:1'], caFile: '/nonexistent/ca.pem' }), /\/nonexistent\/ca\.pem/);
  });

  it('accepts a comma-separated endpoint list', async () => {
    const b = openEtcdV3({ endpoints: [`${etcd.endpoints[0]}, ${etcd.endpoints[0]}`] });
    assert.deepEqual(b.endpoints, [etcd.endpoints[0], etcd.endpoints[0]]);
    await b.close();
  });

  it('opens, reads and closes quickly', async () => {
    const w = openEtcdV3({ endpoints: etcd.endpoints });
    await w.apply('/calico/ipam/v2/config', '{}');
    await w.close();
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = process.hrtime.bigint();
      const b = openEtcdV3({ endpoints: etcd.endpoints });
      assert.ok(await b.get('/calico/ipam/v2/config'));
      await b.close();
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    console.log(`# etcdv3 open+get+close: median ${times[times.length >> 1].toFixed(2)} ms`);
  });

  describe('endpoint failover', () => {
    it('skips a dead endpoint and uses the next one', async () => {
      const dead = `http://127.0.0.1:${await freePort()}`;
      const b = openEtcdV3({ endpoints: [dead, ...etcd.endpoints], timeoutMs: 2000 });
      const t0 = Date.now();
      const c = await b.apply('/failover/k', 'v');
      assert.equal((await b.get('/failover/k'))?.revision, c.revision);
      assert.ok(Date.now() - t0 < 1500, 'a refused connection fails over at once');
      await b.close();
    });

    it('retries reads but not writes on the next endpoint when the first dies mid-request', async () => {
      // Accepts the connection, takes the request, then hangs up without answering.
      const fake = await fakeServer((s) => s.once('data', () => s.destroy()));
      const b = openEtcdV3({ endpoints: [fake.url, ...etcd.endpoints], timeoutMs: 2000 });
      await rejectsUnavailable(b.apply('/failover/sent', 'v'), [fake.url, /may or may not have been applied/]);
      assert.equal(await b.get('/failover/sent'), null, 'the write was not retried on the second endpoint');
      await b.close();
      // A read is safe to repeat: it moves on to the live endpoint.
      const b2 = openEtcdV3({ endpoints: [fake.url, ...etcd.endpoints], timeoutMs: 2000 });
      const conns = fake.conns;
      assert.equal(await b2.get('/failover/sent'), null);
      assert.equal(fake.conns, conns + 1);
      await b2.close();
      await closeServer(fake);
    });

    it('a server that never answers fails with UnavailableError after the timeout, not a hang', async () => {
      const fake = await fakeServer(() => {}); // accepts, never replies
      const b = openEtcdV3({ endpoints: [fake.url], timeoutMs: 300 });
      const t0 = Date.now();
      await rejectsUnavailable(b.get('/x'), [fake.url, /300 ms/]);
      const took = Date.now() - t0;
      assert.ok(took >= 290 && took < 2000, `took ${took} ms`);
      await rejectsUnavailable(b.revision(), [fake.url]);
      await b.close();
      await closeServer(fake);
    });

    it('a watch reconnects after its connection drops, without losing or repeating events', async () => {
      // A TCP proxy in front of etcd whose connections we can cut.
      const target = new URL(etcd.endpoints[0]);
      const proxy = await fakeServer((s) => {
        const up = connect(Number(target.port), '127.0.0.1');
        s.pipe(up).pipe(s);
        s.on('error', () => up.destroy());
        up.on('error', () => s.destroy());
        s.on('close', () => up.destroy());
      });
      const b = openEtcdV3({ endpoints: [proxy.url], timeoutMs: 2000 });
      const writer = openEtcdV3({ endpoints: etcd.endpoints });
      const start = await writer.revision();
      const ac = new AbortController();
      const got: WatchEvent[] = [];
      const done = (async () => {
        for await (const e of b.watch('/reconnect/', { afterRevision: start, signal: ac.signal })) {
          got.push(e);
          if (got.length === 3) for (const s of proxy.sockets) s.destroy(); // cut mid-stream
          if (got.length === 10) ac.abort();
        }
      })();
      for (let i = 0; i < 10; i++) {
        await writer.apply(`/reconnect/${i}`, String(i));
        await new Promise((r) => setTimeout(r, 30));
      }
      await Promise.race([done, new Promise((_, rej) => setTimeout(() => rej(new Error(`stuck after ${got.length} events`)), 8000))]);
      assert.deepEqual(got.map((e) => e.value), ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
      await b.close();
      await writer.close();
      await closeServer(proxy);
    });
  });

  describe('etcd stopped', () => {
    let e2: TestEtcd;
    before(async () => {
      e2 = await startEtcd();
    });
    after(async () => {
      await e2?.stop();
    });

    it('requests and watches fail with UnavailableError naming the endpoint, within the timeout', async () => {
      const b = openEtcdV3({ endpoints: e2.endpoints, timeoutMs: 1000 });
      await b.apply('/stop/k', 'v');
      const iter = b.watch('/stop/')[Symbol.asyncIterator]();
      const next = iter.next();
      await new Promise((r) => setTimeout(r, 200)); // let the watch stream open
      await e2.stop();
      const t0 = Date.now();
      await rejectsUnavailable(b.get('/stop/k'), [e2.endpoints[0]]);
      await rejectsUnavailable(b.apply('/stop/k', 'w'), [e2.endpoints[0]]);
      await rejectsUnavailable(next, [e2.endpoints[0], /watch of \/stop\//]);
      assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
      await b.close();
    });
  });

  describe('TLS with client certificates', () => {
    let tlsEtcd: TestEtcd;
    let other: ReturnType<typeof makeTestPKI>;
    let dir: string | undefined;
    before(async () => {
      tlsEtcd = await startEtcd({ tls: {} });
      dir = mkdtempSync(join(tmpdir(), 'tortie-etcd-pki-'));
      other = makeTestPKI(dir, 'other-'); // a CA etcd does not trust
    });
    after(async () => {
      await tlsEtcd?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('works with the right CA, certificate and key (including watches)', async () => {
      const pki = tlsEtcd.pki!;
      assert.match(tlsEtcd.endpoints[0], /^https:\/\/127\.0\.0\.1:/);
      const b = openEtcdV3({ endpoints: tlsEtcd.endpoints, caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile });
      const start = await b.revision();
      const c = await b.create('/tls/k', 'secret');
      assert.deepEqual(await b.get('/tls/k'), c);
      for await (const e of b.watch('/tls/', { afterRevision: start })) {
        assert.equal(e.value, 'secret');
        break;
      }
      await b.close();
    });

    it('without a client certificate the server refuses, with a clear error', async () => {
      const b = openEtcdV3({ endpoints: tlsEtcd.endpoints, caFile: tlsEtcd.pki!.caFile, timeoutMs: 3000 });
      await rejectsUnavailable(b.get('/tls/k'), [tlsEtcd.endpoints[0], /TLS/, /certificate/i]);
      await b.close();
    });

    it('a client certificate from an untrusted CA is refused, with a clear error', async () => {
      const b = openEtcdV3({
        endpoints: tlsEtcd.endpoints,
        caFile: tlsEtcd.pki!.caFile,
        certFile: other.clientCertFile,
        keyFile: other.clientKeyFile,
        timeoutMs: 3000,
      });
      await rejectsUnavailable(b.apply('/tls/k', 'x'), [tlsEtcd.endpoints[0], /TLS/]);
      await b.close();
    });

    it('a server certificate from an untrusted CA is refused, with a clear error', async () => {
      const pki = tlsEtcd.pki!;
      const b = openEtcdV3({ endpoints: tlsEtcd.endpoints, caFile: other.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile, timeoutMs: 3000 });
      await rejectsUnavailable(b.get('/tls/k'), [tlsEtcd.endpoints[0], /TLS/, /certificate/i]);
      await b.close();
    });

    it('plain http to a TLS endpoint fails clearly', async () => {
      const b = openEtcdV3({ endpoints: [tlsEtcd.endpoints[0].replace('https:', 'http:')], timeoutMs: 3000 });
      await assert.rejects(b.get('/tls/k'), (e: unknown) => e instanceof DatastoreError && (e as Error).message.includes('127.0.0.1'));
      await b.close();
    });
  });
});
