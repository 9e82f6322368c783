import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../backend/api.js';
import { openEmbedded } from '../backend/embedded/embedded.js';
import { blockKey, handleKey, resourceKey } from '../backend/keys.js';
import { parseCIDR, parseIP, cidrContainsIP } from '../net/ip.js';
import { type BlockData, inUseCount } from './block.js';
import { IPAM, AddressInUseError, IPAMError } from './ipam.js';

// Label matcher for these tests: `all()` or `key == 'value'` (the real parser is tested with selectors).
function selects(sel: string, labels: Record<string, string>): boolean {
  if (sel === 'all()') return true;
  const m = /^(\S+) == '([^']*)'$/.exec(sel);
  if (!m) throw new Error(`test matcher cannot read ${sel}`);
  return labels[m[1]] === m[2];
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'tortie-ipam-test-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
async function fresh(): Promise<{ store: Backend; ipam: IPAM }> {
  const store = openEmbedded(join(dir, `s${n++}.db`));
  return { store, ipam: new IPAM(store, { selects }) };
}

async function putPool(store: Backend, name: string, spec: Record<string, unknown>): Promise<void> {
  await store.apply(
    resourceKey('IPPool', name),
    JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name }, spec }),
  );
}

const req = (host: string, handle: string, extra: Record<string, unknown> = {}) => ({
  handleId: handle,
  attrs: { node: host },
  hostname: host,
  num4: 1,
  num6: 0,
  ...extra,
});

async function block(store: Backend, cidr: string): Promise<BlockData | null> {
  const kv = await store.get(blockKey(parseCIDR(cidr)!));
  return kv ? (JSON.parse(kv.value) as BlockData) : null;
}

describe('IPAM', () => {
  it('claims a block affine to the node and records the handle', async () => {
    const { store, ipam } = await fresh();
    await putPool(store, 'p', { cidr: '10.1.0.0/16', blockSize: 26 });
    const { ipv4 } = await ipam.autoAssign(req('node1', 'net.c1'));
    assert.equal(ipv4.length, 1);
    assert.equal(ipv4[0].blockPrefix, 26);
    const blocks = await ipam.blocks(4);
    assert.equal(blocks.length, 1);
    assert.equal(blocks[0].affinity, 'host:node1');
    assert.ok(cidrContainsIP(parseCIDR(blocks[0].cidr)!, parseIP(ipv4[0].ip)!));
    const h = await store.get(handleKey('net.c1'));
    assert.deepEqual(JSON.parse(h!.value).block, { [blocks[0].cidr]: 1 });
    const who = await ipam.assignment(ipv4[0].ip);
    assert.equal(who?.handleId, 'net.c1');
    assert.equal(who?.attrs.node, 'node1');
    await store.close();
  });

  it('reuses freed addresses first-in first-out', async () => {
    const { store, ipam } = await fresh();
    await putPool(store, 'p', { cidr: '10.2.0.0/24', blockSize: 29 });
    const a = (await ipam.autoAssign(req('n', 'h.a'))).ipv4[0].ip;
    const b = (await ipam.autoAssign(req('n', 'h.b'))).ipv4[0].ip;
    assert.notEqual(a, b);
    assert.deepEqual(await ipam.releaseByHandle('h.a'), [a]);
    const c = (await ipam.autoAssign(req('n', 'h.c'))).ipv4[0].ip;
    assert.notEqual(c, a, 'a freed address goes to the back of the queue');
    // Drain the rest of the /29: the freed address comes back only after every never-used one.
    const seen = [c];
    for (let i = 0; i < 6; i++) seen.push((await ipam.autoAssign(req('n', `h.d${i}`))).ipv4[0].ip);
    assert.equal(seen.at(-1), a);
    assert.equal(new Set([b, ...seen]).size, 8);
    await store.close();
  });

  it('claims a second block when the first is full, up to maxBlocksPerHost, then borrows', async () => {
    const { store, ipam } = await fresh();
    await putPool(store, 'p', { cidr: '10.3.0.0/28', blockSize: 30 });
    await store.apply(
      resourceKey('IPAMConfiguration', 'default'),
      JSON.stringify({ kind: 'IPAMConfiguration', metadata: { name: 'default' }, spec: { strictAffinity: false, maxBlocksPerHost: 2 } }),
    );
    // Another node owns one block with room.
    await ipam.autoAssign(req('other', 'o.1'));
    const got: string[] = [];
    for (let i = 0; i < 9; i++) got.push((await ipam.autoAssign(req('me', `m.${i}`))).ipv4[0].ip);
    assert.equal(new Set(got).size, 9);
    const blocks = await ipam.blocks(4);
    const mine = blocks.filter((b) => b.affinity === 'host:me');
    assert.equal(mine.length, 2, 'claims stop at the limit');
    const borrowed = blocks.find((b) => b.affinity === 'host:other')!;
    assert.equal(inUseCount(borrowed), 2, 'the ninth address was borrowed from the other node');
    await store.close();
  });

  it('refuses to borrow under strict affinity, naming the limit', async () => {
    const { store, ipam } = await fresh();
    await putPool(store, 'p', { cidr: '10.4.0.0/28', blockSize: 30 });
    await store.apply(
      resourceKey('IPAMConfiguration', 'default'),
      JSON.stringify({ kind: 'IPAMConfiguration', metadata: { name: 'default' }, spec: { strictAffinity: true, maxBlocksPerHost: 1 } }),
    );
    for (let i = 0; i < 4; i++) await ipam.autoAssign(req('me', `m.${i}`));
    await assert.rejects(ipam.autoAssign(req('me', 'm.x')), /limit of 1 blocks reached/);
    assert.equal(await store.get(handleKey('m.x')), null, 'a failed request leaves no handle');
    await store.close();
  });

  it('reports an exhausted pool', async () => {
    const { store, ipam } = await fresh();
    await putPool(store, 'p', { cidr: '10.5.0.0/30', blockSize: 30 });
    for (let i = 0; i < 4; i++) await ipam.autoAssign(req('me', `m.${i}`));
    await assert.rejects(ipam.autoAssign(req('me', 'm.x')), (e: Error) => {
      assert.ok(e instanceof IPAMError);
      assert.match(e.message, /No IPs available in pools: \[10\.5\.0\.0\/30\]/);
      return true;
    });
    await store.close();
  });

  it('honours IPReservations', async () => {
    const { store, ipam } = await fresh();
    await putPool(store, 'p', { cidr: '10.6.0.0/29', blockSize: 29 });
    await store.apply(
      resourceKey('IPReservation', 'r'),
      JSON.stringify({ kind: 'IPReservation', metadata: { name: 'r' }, spec: { reservedCIDRs: ['10.6.0.0/30', '10.6.0.5'] } }),
    );
    const got: string[] = [];
    for (let i = 0; i < 3; i++) got.push((await ipam.autoAssign(req('me', `m.${i}`))).ipv4[0].ip);
    assert.deepEqual(got.sort(), ['10.6.0.4', '10.6.0.6', '10.6.0.7']);
    await assert.rejects(ipam.autoAssign(req('me', 'm.x')), /No IPs available/);
    await store.close();
  });

  it('chooses pools by nodeSelector and by name or CIDR', async () => {
    const { store, ipam } = await fresh();
    await putPool(store, 'rack-a', { cidr: '10.7.0.0/24', blockSize: 26, nodeSelector: "rack == 'a'" });
    await putPool(store, 'rack-b', { cidr: '10.8.0.0/24', blockSize: 26, nodeSelector: "rack == 'b'" });
    await store.apply(
      resourceKey('Node', 'nb'),
      JSON.stringify({ kind: 'Node', metadata: { name: 'nb', labels: { rack: 'b' } }, spec: {} }),
    );
    const ip = (await ipam.autoAssign(req('nb', 'x.1'))).ipv4[0].ip;
    assert.match(ip, /^10\.8\.0\./);
    const byName = (await ipam.autoAssign(req('nb', 'x.2', { ipv4Pools: ['rack-a'] }))).ipv4[0].ip;
    assert.match(byName, /^10\.7\.0\./);
    const byCidr = (await ipam.autoAssign(req('nb', 'x.3', { ipv4Pools: ['10.7.0.0/24'] }))).ipv4[0].ip;
    assert.match(byCidr, /^10\.7\.0\./);
    await assert.rejects(ipam.autoAssign(req('nb', 'x.4', { ipv4Pools: ['nope'] })), /IP pool "nope" does not exist/);
    await assert.rejects(ipam.autoAssign(req('nc', 'x.5')), /no configured IPv4 pools are enabled and select node "nc"/);
    await store.close();
  });

  it('assigns IPv6 and dual stack, releasing both families together', async () => {
    const { store, ipam } = await fresh();
    await putPool(store, 'v4', { cidr: '10.9.0.0/24', blockSize: 26 });
    await putPool(store, 'v6', { cidr: 'fd00:9::/120', blockSize: 122 });
    const r = await ipam.autoAssign({ ...req('me', 'd.1'), num6: 1 });
    assert.equal(r.ipv6.length, 1);
    assert.equal(r.ipv6[0].blockPrefix, 122);
    assert.match(r.ipv6[0].ip, /^fd00:9::/);
    const released = await ipam.releaseByHandle('d.1');
    assert.deepEqual(released.sort(), [r.ipv4[0].ip, r.ipv6[0].ip].sort());
    assert.equal(await store.get(handleKey('d.1')), null);
    await store.close();
  });

  it('gives back the IPv4 half when IPv6 cannot be had', async () => {
    const { store, ipam } = await fresh();
    await putPool(store, 'v4', { cidr: '10.10.0.0/24', blockSize: 26 });
    await assert.rejects(ipam.autoAssign({ ...req('me', 'd.1'), num6: 1 }), /IPv6/);
    const blocks = await ipam.blocks(4);
    assert.equal(blocks.reduce((s, b) => s + inUseCount(b), 0), 0);
    assert.equal(await store.get(handleKey('d.1')), null);
    await store.close();
  });

  it('assigns a requested address once', async () => {
    const { store, ipam } = await fresh();
    await putPool(store, 'p', { cidr: '10.11.0.0/24', blockSize: 26 });
    const a = await ipam.assignIP({ ip: '10.11.0.77', handleId: 's.1', attrs: { node: 'me' }, hostname: 'me' });
    assert.deepEqual(a, { ip: '10.11.0.77', blockPrefix: 32, version: 4 });
    assert.equal((await block(store, '10.11.0.64/26'))?.affinity, 'host:me');
    await assert.rejects(
      ipam.assignIP({ ip: '10.11.0.77', handleId: 's.2', attrs: { node: 'me' }, hostname: 'me' }),
      AddressInUseError,
    );
    await assert.rejects(
      ipam.assignIP({ ip: '10.99.0.1', handleId: 's.3', attrs: { node: 'me' }, hostname: 'me' }),
      /not in any configured pool/,
    );
    assert.equal(await store.get(handleKey('s.2')), null);
  });

  it('releases by address, refuses a wrong handle guard, and deletes empty unaffine blocks', async () => {
    const { store, ipam } = await fresh();
    await putPool(store, 'p', { cidr: '10.12.0.0/24', blockSize: 26 });
    const ip = (await ipam.autoAssign(req('me', 'r.1'))).ipv4[0].ip;
    await assert.rejects(ipam.releaseIPs([ip], { handleId: 'someone-else' }), /held by handle r\.1/);
    // Make the block unaffine, as after its node is removed.
    const cidr = (await ipam.blocks(4))[0].cidr;
    const kv = await store.get(blockKey(parseCIDR(cidr)!));
    await store.update(kv!.key, JSON.stringify({ ...JSON.parse(kv!.value), affinity: null }), kv!.revision);
    assert.deepEqual(await ipam.releaseIPs([ip, '10.12.0.200']), { released: [ip], notAssigned: ['10.12.0.200'] });
    assert.equal(await block(store, cidr), null, 'empty unaffine block deleted');
    assert.equal(await store.get(handleKey('r.1')), null, 'handle deleted with its last address');
    await store.close();
  });

  it('never hands out an address twice under concurrency from many nodes', async () => {
    const { store, ipam } = await fresh();
    await putPool(store, 'p', { cidr: '10.13.0.0/22', blockSize: 26 });
    const hosts = ['a', 'b', 'c', 'd', 'e'];
    const results = await Promise.all(
      Array.from({ length: 150 }, (_, i) => ipam.autoAssign(req(hosts[i % 5], `k.${i}`))),
    );
    const ips = results.map((r) => r.ipv4[0].ip);
    assert.equal(new Set(ips).size, 150);
    const blocks = await ipam.blocks(4);
    assert.equal(blocks.reduce((s, b) => s + inUseCount(b), 0), 150);
    for (const b of blocks) {
      const owner = b.affinity!.slice(5);
      for (const a of b.attributes) assert.equal(a.secondary?.node, owner, 'every address is in its node’s block');
    }
    await Promise.all(Array.from({ length: 150 }, (_, i) => ipam.releaseByHandle(`k.${i}`)));
    const after = await ipam.blocks(4);
    assert.equal(after.reduce((s, b) => s + inUseCount(b), 0), 0);
    await store.close();
  });
});

describe('IPAM block affinities', () => {
  it('releaseBlockAffinity deletes an empty block and its affinity; mustBeEmpty keeps a used one', async () => {
    const { store, ipam } = await fresh();
    await putPool(store, 'p', { cidr: '10.20.0.0/24', blockSize: 28 });
    await ipam.autoAssign(req('n1', 'h.a'));
    const cidr = (await ipam.blocks(4))[0].cidr;
    assert.deepEqual(await ipam.affinities(), [{ host: 'n1', cidr, state: 'confirmed' }]);
    assert.equal(await ipam.releaseBlockAffinity('n1', cidr, { mustBeEmpty: true }), false, 'a block holding an address is kept');
    assert.equal((await block(store, cidr))?.affinity, 'host:n1');
    assert.deepEqual(await ipam.affinities(), [{ host: 'n1', cidr, state: 'confirmed' }]);
    await ipam.releaseByHandle('h.a');
    assert.equal((await block(store, cidr))?.affinity, 'host:n1', 'an empty affine block stays after the release');
    assert.equal(await ipam.releaseBlockAffinity('n1', cidr, { mustBeEmpty: true }), true);
    assert.equal(await block(store, cidr), null);
    assert.deepEqual(await ipam.affinities(), []);
    // The host claims a block again when it next allocates.
    assert.ok((await ipam.autoAssign(req('n1', 'h.b'))).ipv4[0].ip);
    assert.equal((await ipam.affinities()).length, 1);
    await store.close();
  });

  it('releaseBlockAffinity without mustBeEmpty leaves a used block unaffine with its addresses', async () => {
    const { store, ipam } = await fresh();
    await putPool(store, 'p', { cidr: '10.21.0.0/24', blockSize: 28 });
    const ip = (await ipam.autoAssign(req('n1', 'h.a'))).ipv4[0].ip;
    const cidr = (await ipam.blocks(4))[0].cidr;
    assert.equal(await ipam.releaseBlockAffinity('n1', cidr), true);
    const b = await block(store, cidr);
    assert.equal(b?.affinity, null);
    assert.equal(inUseCount(b!), 1);
    assert.equal((await ipam.assignment(ip))?.handleId, 'h.a');
    assert.deepEqual(await ipam.affinities(), []);
    await store.close();
  });

  it("releaseHostAffinities releases a host's empty blocks and keeps the used ones", async () => {
    const { store, ipam } = await fresh();
    await putPool(store, 'p', { cidr: '10.22.0.0/24', blockSize: 30 });
    for (let i = 0; i < 6; i++) await ipam.autoAssign(req('gone', `g.${i}`));
    await ipam.autoAssign(req('other', 'o.1'));
    const mine = (await ipam.blocks(4)).filter((b) => b.affinity === 'host:gone').map((b) => b.cidr).sort();
    assert.equal(mine.length, 2);
    for (let i = 0; i < 4; i++) await ipam.releaseByHandle(`g.${i}`);
    const r = await ipam.releaseHostAffinities('gone', { mustBeEmpty: true });
    assert.equal(r.released.length, 1);
    assert.equal(r.kept.length, 1);
    assert.deepEqual([...r.released, ...r.kept].sort(), mine);
    assert.deepEqual((await ipam.affinities()).map((a) => a.host).sort(), ['gone', 'other']);
    for (let i = 4; i < 6; i++) await ipam.releaseByHandle(`g.${i}`);
    assert.deepEqual(await ipam.releaseHostAffinities('gone', { mustBeEmpty: true }), { released: r.kept, kept: [] });
    assert.deepEqual((await ipam.affinities()).map((a) => a.host), ['other']);
    assert.equal((await ipam.blocks(4)).length, 1);
    await store.close();
  });
});
