// Block IPAM over any Backend, with Calico's semantics (pools cut into node-affine blocks, FIFO
// reuse, borrowing, reservations). Every write is a compare-and-swap, so no address is ever handed
// out twice, however many processes on however many nodes allocate at once.
import {
  AlreadyExistsError,
  type Backend,
  ConflictError,
  type KVPair,
  NotFoundError,
} from '../backend/api.js';
import {
  affinityKey,
  affinityPrefix,
  blockKey,
  blockPrefix,
  handleKey,
  parseAffinityKey,
  resourceKey,
  resourcePrefix,
} from '../backend/keys.js';
import type { Resource } from '../apis/v3/resource.js';
import {
  type CIDR,
  type IP,
  type IPVersion,
  cidrContainsIP,
  cidrOverlaps,
  formatCIDR,
  formatIP,
  parseCIDR,
  parseIP,
} from '../net/ip.js';
import {
  type BlockData,
  assignFromBlock,
  assignOrdinal,
  attributeOf,
  freeOrdinals,
  hostOf,
  ipOrdinal,
  isEmpty,
  newBlock,
  ordinalsOfHandle,
  releaseOrdinals,
} from './block.js';
import { AddressInUseError, IPAMError } from './errors.js';
import { type IPAMConfig, effectiveMaxBlocks, readIPAMConfig } from './config.js';
import { type Pool, blockFor, candidateBlocks, poolFromResource, resolveRequestedPools } from './pools.js';

export type SelectorMatcher = (selector: string, labels: Record<string, string>) => boolean;

export interface IPAMOptions {
  /** Evaluates a pool's nodeSelector against the node's labels. */
  selects: SelectorMatcher;
  /** Compare-and-swap attempts per operation before giving up (Calico: 100). */
  maxRetries?: number;
  now?: () => Date;
}

export interface AutoAssignRequest {
  handleId: string;
  /** Owner attributes stored with the allocation (node, pod, namespace, timestamp, …). */
  attrs: Record<string, string>;
  hostname: string;
  num4: number;
  num6: number;
  ipv4Pools?: string[];
  ipv6Pools?: string[];
  maxBlocksPerHost?: number;
  /** Intended use checked against pools' allowedUses (default Workload). */
  intendedUse?: 'Workload' | 'Tunnel';
}

export interface AssignedIP {
  ip: string;
  /** Prefix length of the block it came from. */
  blockPrefix: number;
  version: IPVersion;
}

export { AddressInUseError, IPAMError } from './errors.js';

interface HandleData {
  block: Record<string, number>;
  deleted: boolean;
}

interface AffinityData {
  state: 'pending' | 'confirmed' | 'pendingDeletion' | '';
  deleted: boolean;
}

const RETRY_MESSAGE = 'Max retries hit - excessive concurrent IPAM requests';

function isRetryable(e: unknown): boolean {
  return e instanceof ConflictError || e instanceof AlreadyExistsError || e instanceof NotFoundError;
}

/** Jittered exponential backoff, capped: spreads out writers that keep colliding on one block. */
function backoff(attempt: number): Promise<void> {
  if (attempt < 2) return Promise.resolve();
  const cap = Math.min(50, 2 ** Math.min(attempt, 6));
  return new Promise((r) => setTimeout(r, Math.random() * cap));
}

export class IPAM {
  private readonly maxRetries: number;
  private readonly now: () => Date;

  constructor(
    private readonly store: Backend,
    private readonly opts: IPAMOptions,
  ) {
    this.maxRetries = opts.maxRetries ?? 100;
    this.now = opts.now ?? (() => new Date());
  }

  config(): Promise<IPAMConfig> {
    return readIPAMConfig(this.store);
  }

  async pools(): Promise<Pool[]> {
    const { items } = await this.store.list(resourcePrefix('IPPool'));
    return items.map((kv) => poolFromResource(JSON.parse(kv.value) as Resource)).filter((p): p is Pool => p !== null);
  }

  /** Reserved CIDRs from every IPReservation, as a predicate. */
  async reservations(): Promise<(ip: IP) => boolean> {
    const { items } = await this.store.list(resourcePrefix('IPReservation'));
    const cidrs: CIDR[] = [];
    for (const kv of items) {
      const spec = (JSON.parse(kv.value) as Resource).spec as { reservedCIDRs?: string[] } | undefined;
      for (const s of spec?.reservedCIDRs ?? []) {
        const c = parseCIDR(s.includes('/') ? s : s.includes(':') ? `${s}/128` : `${s}/32`);
        if (c) cidrs.push(c);
      }
    }
    return (ip) => cidrs.some((c) => cidrContainsIP(c, ip));
  }

  private async nodeLabels(host: string): Promise<Record<string, string>> {
    const kv = await this.store.get(resourceKey('Node', host));
    return kv ? ((JSON.parse(kv.value) as Resource).metadata.labels ?? {}) : {};
  }

  // ---- handles -----------------------------------------------------------------------------

  private async changeHandle(handleId: string, blockCidr: string, delta: number): Promise<void> {
    const key = handleKey(handleId);
    if (delta > 0) {
      // The common case is a new container whose handle does not exist yet: one write, no read.
      const h: HandleData = { block: { [blockCidr]: delta }, deleted: false };
      try {
        await this.store.create(key, JSON.stringify(h));
        return;
      } catch (e) {
        if (!(e instanceof AlreadyExistsError)) throw e;
      }
    }
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const kv = await this.store.get(key);
      try {
        if (!kv) {
          if (delta <= 0) return;
          const h: HandleData = { block: { [blockCidr]: delta }, deleted: false };
          await this.store.create(key, JSON.stringify(h));
          return;
        }
        const h = JSON.parse(kv.value) as HandleData;
        const n = (h.block[blockCidr] ?? 0) + delta;
        if (n > 0) h.block[blockCidr] = n;
        else delete h.block[blockCidr];
        if (Object.keys(h.block).length === 0) await this.store.delete(key, kv.revision);
        else await this.store.update(key, JSON.stringify(h), kv.revision);
        return;
      } catch (e) {
        if (!isRetryable(e)) throw e;
        await backoff(attempt);
      }
    }
    throw new IPAMError(RETRY_MESSAGE);
  }

  // ---- assignment --------------------------------------------------------------------------

  /** Allocates `num4` IPv4 and `num6` IPv6 addresses for a handle, as Calico's AutoAssign. */
  async autoAssign(req: AutoAssignRequest): Promise<{ ipv4: AssignedIP[]; ipv6: AssignedIP[] }> {
    const [cfg, allPools, reserved, labels] = await Promise.all([
      this.config(),
      this.pools(),
      this.reservations(),
      this.nodeLabels(req.hostname),
    ]);
    const use = req.intendedUse ?? 'Workload';
    const eligible = (version: IPVersion, requested?: string[]) => {
      const explicit = requested && requested.length > 0;
      return resolveRequestedPools(allPools, requested, version).filter(
        (p) =>
          !p.disabled &&
          p.allowedUses.includes(use) &&
          (explicit || (p.assignmentMode === 'Automatic' && this.opts.selects(p.nodeSelector, labels))),
      );
    };
    const pools4 = req.num4 > 0 ? eligible(4, req.ipv4Pools) : [];
    const pools6 = req.num6 > 0 ? eligible(6, req.ipv6Pools) : [];
    const ipv4 = req.num4 > 0 ? await this.assignFamily(4, req.num4, pools4, req, cfg, reserved) : [];
    let ipv6: AssignedIP[] = [];
    try {
      ipv6 = req.num6 > 0 ? await this.assignFamily(6, req.num6, pools6, req, cfg, reserved) : [];
    } catch (e) {
      // Half a dual-stack request is no use to a pod: give back what the other family got.
      if (ipv4.length > 0) await this.releaseByHandle(req.handleId);
      throw e;
    }
    return { ipv4, ipv6 };
  }

  private async assignFamily(
    version: IPVersion,
    num: number,
    pools: Pool[],
    req: AutoAssignRequest,
    cfg: IPAMConfig,
    reserved: (ip: IP) => boolean,
  ): Promise<AssignedIP[]> {
    const out: AssignedIP[] = [];
    const kind = `IPv${version}`;
    if (pools.length === 0) {
      throw new IPAMError(`no configured ${kind} pools are enabled and select node ${JSON.stringify(req.hostname)}`);
    }
    const maxBlocks = effectiveMaxBlocks(cfg, req.maxBlocksPerHost);
    let limitHit = false;
    for (let round = 0; out.length < num && round < this.maxRetries; round++) {
      const affine = await this.hostAffinities(req.hostname, version, pools);
      // Blocks are read one by one, and only until the request is met.
      for (const { cidr, kv } of affine) {
        if (out.length >= num) break;
        const block = await this.ensureBlockFor(req.hostname, cidr, kv);
        if (!block || block.data.unallocated.length === 0) continue;
        out.push(...(await this.assignFromExisting(cidr, num - out.length, req, reserved, true, block)));
      }
      if (out.length >= num) break;
      if (affine.length >= maxBlocks) {
        limitHit = true;
        break;
      }
      if (!cfg.autoAllocateBlocks) break;
      const claimed = await this.claimNewBlock(version, pools, req.hostname, reserved);
      if (!claimed) break;
    }
    if (out.length < num && !cfg.strictAffinity) {
      out.push(...(await this.borrow(version, num - out.length, pools, req, reserved)));
    }
    if (out.length < num) {
      const why = limitHit
        ? `Need to allocate an IPAM block but could not - limit of ${maxBlocks} blocks reached for this node`
        : cfg.strictAffinity
          ? 'No more free affine blocks and strict affinity enabled'
          : `No IPs available in pools: [${pools.map((p) => formatCIDR(p.cidr)).join(' ')}]`;
      if (out.length > 0) await this.releaseIPs(out.map((a) => a.ip));
      throw new IPAMError(`Assigned ${out.length} out of ${num} requested ${kind} addresses; ${why}`);
    }
    return out;
  }

  /** The host's live block affinities inside the given pools (affinity records only). */
  private async hostAffinities(host: string, version: IPVersion, pools: Pool[]): Promise<{ cidr: CIDR; kv: KVPair }[]> {
    const { items } = await this.store.list(affinityPrefix(host, version));
    const out: { cidr: CIDR; kv: KVPair }[] = [];
    for (const kv of items) {
      const parsed = parseAffinityKey(kv.key);
      const cidr = parsed && parseCIDR(parsed.cidr);
      if (!cidr) continue;
      const aff = (kv.value ? JSON.parse(kv.value) : { state: 'confirmed', deleted: false }) as AffinityData;
      if (aff.state === 'pendingDeletion' || aff.deleted) continue;
      if (pools.some((p) => cidrOverlaps(p.cidr, cidr))) out.push({ cidr, kv });
    }
    return out;
  }

  /**
   * The host's block for an affinity, repairing a claim a crashed allocator left half-done: a
   * pending affinity whose block is missing gets its block, one whose block exists with our
   * affinity is confirmed, one pointing at another host's block is dropped (→ null).
   */
  private async ensureBlockFor(host: string, cidr: CIDR, aff: KVPair): Promise<{ kv: KVPair; data: BlockData } | null> {
    let block = await this.store.get(blockKey(cidr));
    if (!block) {
      try {
        block = await this.store.create(blockKey(cidr), JSON.stringify(newBlock(cidr, `host:${host}`, this.now())));
      } catch (e) {
        if (!(e instanceof AlreadyExistsError)) throw e;
        block = await this.store.get(blockKey(cidr));
        if (!block) return null;
      }
    }
    const data = JSON.parse(block.value) as BlockData;
    if (data.affinity !== `host:${host}`) {
      await this.store.delete(aff.key, aff.revision).catch((e) => {
        if (!isRetryable(e)) throw e;
      });
      return null;
    }
    const state = aff.value ? (JSON.parse(aff.value) as AffinityData).state : 'confirmed';
    if (state === 'pending') {
      await this.store
        .update(aff.key, JSON.stringify({ state: 'confirmed', deleted: false }), aff.revision)
        .catch((e) => {
          if (!isRetryable(e)) throw e;
        });
    }
    return { kv: block, data };
  }

  /** Claims the first free block of the pools for `host` (pending affinity → block → confirmed). */
  private async claimNewBlock(
    version: IPVersion,
    pools: Pool[],
    host: string,
    reserved: (ip: IP) => boolean,
  ): Promise<CIDR | null> {
    const { items } = await this.store.list(blockPrefix(version));
    const existing = new Set(items.map((kv) => (JSON.parse(kv.value) as BlockData).cidr));
    for (const pool of pools) {
      for (const cidr of candidateBlocks(pool, host)) {
        const text = formatCIDR(cidr);
        if (existing.has(text)) continue;
        if (wholeBlockReserved(cidr, reserved)) continue;
        const affKey = affinityKey(host, cidr);
        await this.store.create(affKey, JSON.stringify({ state: 'pending', deleted: false })).catch((e) => {
          if (!(e instanceof AlreadyExistsError)) throw e;
        });
        try {
          await this.store.create(blockKey(cidr), JSON.stringify(newBlock(cidr, `host:${host}`, this.now())));
        } catch (e) {
          if (!(e instanceof AlreadyExistsError)) throw e;
          const other = await this.store.get(blockKey(cidr));
          if (!other || (JSON.parse(other.value) as BlockData).affinity !== `host:${host}`) {
            const mine = await this.store.get(affKey);
            if (mine) await this.store.delete(affKey, mine.revision).catch(() => undefined);
            existing.add(text);
            continue;
          }
        }
        await this.store.apply(affKey, JSON.stringify({ state: 'confirmed', deleted: false }));
        return cidr;
      }
    }
    return null;
  }

  /** Assigns up to `num` addresses from one existing block with CAS; [] when it has none to give. */
  private async assignFromExisting(
    cidr: CIDR,
    num: number,
    req: AutoAssignRequest,
    reserved: (ip: IP) => boolean,
    affineOnly: boolean,
    /** The block as just read and parsed, saving the first attempt a read. */
    known?: { kv: KVPair; data: BlockData },
  ): Promise<AssignedIP[]> {
    const key = blockKey(cidr);
    const blockText = formatCIDR(cidr);
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const kv = attempt === 0 && known ? known.kv : await this.store.get(key);
      if (!kv) return [];
      const b = attempt === 0 && known ? known.data : (JSON.parse(kv.value) as BlockData);
      if (affineOnly && b.affinity !== `host:${req.hostname}`) return [];
      if (!affineOnly && b.affinity === `host:${req.hostname}`) return [];
      const ips = assignFromBlock(b, num, req.handleId, req.attrs, reserved);
      if (ips.length === 0) return [];
      // Handle first: a crash between the two writes leaves a countable handle, never an
      // allocation that no DEL can find.
      await this.changeHandle(req.handleId, blockText, ips.length);
      try {
        await this.store.update(key, JSON.stringify(b), kv.revision);
        return ips.map((ip) => ({ ip: formatIP(ip), blockPrefix: cidr.prefix, version: ip.version }));
      } catch (e) {
        await this.changeHandle(req.handleId, blockText, -ips.length);
        if (!isRetryable(e)) throw e;
        await backoff(attempt);
      }
    }
    throw new IPAMError(RETRY_MESSAGE);
  }

  /** Takes addresses from other hosts' blocks (strictAffinity off), as Calico does when a host is full. */
  private async borrow(
    version: IPVersion,
    num: number,
    pools: Pool[],
    req: AutoAssignRequest,
    reserved: (ip: IP) => boolean,
  ): Promise<AssignedIP[]> {
    const out: AssignedIP[] = [];
    const { items } = await this.store.list(blockPrefix(version));
    for (const kv of items) {
      if (out.length >= num) break;
      const b = JSON.parse(kv.value) as BlockData;
      const cidr = parseCIDR(b.cidr);
      if (!cidr || !pools.some((p) => cidrOverlaps(p.cidr, cidr))) continue;
      if (b.affinity === `host:${req.hostname}` || freeOrdinals(b, reserved).length === 0) continue;
      out.push(...(await this.assignFromExisting(cidr, num - out.length, req, reserved, false)));
    }
    return out;
  }

  /** Assigns one specific address (CNI_ARGS IP=). The block is claimed for the host if new. */
  async assignIP(req: { ip: string; handleId: string; attrs: Record<string, string>; hostname: string }): Promise<AssignedIP> {
    const ip = parseIP(req.ip);
    if (!ip) throw new IPAMError(`invalid IP address ${JSON.stringify(req.ip)}`);
    const [cfg, pools] = await Promise.all([this.config(), this.pools()]);
    const pool = pools.find((p) => cidrContainsIP(p.cidr, ip));
    if (!pool) throw new IPAMError(`IP ${req.ip} is not in any configured pool`);
    if (pool.disabled) throw new IPAMError(`IP ${req.ip} is in pool ${pool.name}, which is disabled`);
    const cidr = blockFor(pool, ip.value);
    const key = blockKey(cidr);
    const blockText = formatCIDR(cidr);
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      let kv = await this.store.get(key);
      if (!kv) {
        await this.claimSpecificBlock(cidr, req.hostname);
        kv = await this.store.get(key);
        if (!kv) continue;
      }
      const b = JSON.parse(kv.value) as BlockData;
      if (cfg.strictAffinity && b.affinity !== `host:${req.hostname}`) {
        throw new IPAMError(`IP ${req.ip} is in block ${blockText}, which is not affine to ${req.hostname} and strict affinity is enabled`);
      }
      const ord = ipOrdinal(b, ip)!;
      if (!assignOrdinal(b, ord, req.handleId, req.attrs)) {
        throw new AddressInUseError(`Address already assigned in block: ${req.ip}`);
      }
      await this.changeHandle(req.handleId, blockText, 1);
      try {
        await this.store.update(key, JSON.stringify(b), kv.revision);
        return { ip: formatIP(ip), blockPrefix: ip.version === 4 ? 32 : 128, version: ip.version };
      } catch (e) {
        await this.changeHandle(req.handleId, blockText, -1);
        if (!isRetryable(e)) throw e;
        await backoff(attempt);
      }
    }
    throw new IPAMError(RETRY_MESSAGE);
  }

  private async claimSpecificBlock(cidr: CIDR, host: string): Promise<void> {
    const affKey = affinityKey(host, cidr);
    await this.store.create(affKey, JSON.stringify({ state: 'pending', deleted: false })).catch((e) => {
      if (!(e instanceof AlreadyExistsError)) throw e;
    });
    try {
      await this.store.create(blockKey(cidr), JSON.stringify(newBlock(cidr, `host:${host}`, this.now())));
      await this.store.apply(affKey, JSON.stringify({ state: 'confirmed', deleted: false }));
    } catch (e) {
      if (!(e instanceof AlreadyExistsError)) throw e;
      const mine = await this.store.get(affKey);
      if (mine) await this.store.delete(affKey, mine.revision).catch(() => undefined);
    }
  }

  // ---- release -----------------------------------------------------------------------------

  /**
   * Writes a block after a release: an empty block that no host owns is deleted, anything else
   * is updated. Throws the backend's CAS errors for the caller's retry loop.
   */
  private async writeReleased(kv: KVPair, b: BlockData): Promise<void> {
    if (isEmpty(b) && hostOf(b) === null) await this.store.delete(kv.key, kv.revision);
    else await this.store.update(kv.key, JSON.stringify(b), kv.revision);
  }

  /** Frees every address of a handle; returns them. A missing handle is nothing to do. */
  async releaseByHandle(handleId: string): Promise<string[]> {
    const hk = handleKey(handleId);
    const released: string[] = [];
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const hkv = await this.store.get(hk);
      if (!hkv) return released;
      const h = JSON.parse(hkv.value) as HandleData;
      for (const blockText of Object.keys(h.block)) {
        const cidr = parseCIDR(blockText);
        if (cidr) released.push(...(await this.releaseHandleInBlock(cidr, handleId)));
      }
      try {
        await this.store.delete(hk, hkv.revision);
        return released;
      } catch (e) {
        if (!isRetryable(e)) throw e;
        await backoff(attempt);
      }
    }
    throw new IPAMError(RETRY_MESSAGE);
  }

  private async releaseHandleInBlock(cidr: CIDR, handleId: string): Promise<string[]> {
    const key = blockKey(cidr);
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const kv = await this.store.get(key);
      if (!kv) return [];
      const b = JSON.parse(kv.value) as BlockData;
      const ords = ordinalsOfHandle(b, handleId);
      if (ords.length === 0) return [];
      const ips = ords.map((o) => formatIP({ version: cidr.version, value: cidr.network + BigInt(o) }));
      releaseOrdinals(b, ords);
      try {
        await this.writeReleased(kv, b);
        return ips;
      } catch (e) {
        if (!isRetryable(e)) throw e;
        await backoff(attempt);
      }
    }
    throw new IPAMError(RETRY_MESSAGE);
  }

  /** Finds the block holding `ip`: by its pool's block size, else by scanning every block. */
  private async blockKeyFor(ip: IP, pools: Pool[]): Promise<string | null> {
    const pool = pools.find((p) => cidrContainsIP(p.cidr, ip));
    if (pool) return blockKey(blockFor(pool, ip.value));
    const { items } = await this.store.list(blockPrefix(ip.version));
    for (const kv of items) {
      const c = parseCIDR((JSON.parse(kv.value) as BlockData).cidr);
      if (c && cidrContainsIP(c, ip)) return kv.key;
    }
    return null;
  }

  /**
   * Frees addresses. With `handleId`/`sequenceNumber`, an address is freed only if it still
   * belongs to that handle / allocation (so a stale leak report cannot free a reused address).
   */
  async releaseIPs(
    ips: string[],
    guard?: { handleId?: string; sequenceNumber?: number },
  ): Promise<{ released: string[]; notAssigned: string[] }> {
    const pools = await this.pools();
    const released: string[] = [];
    const notAssigned: string[] = [];
    for (const text of ips) {
      const ip = parseIP(text);
      if (!ip) throw new IPAMError(`invalid IP address ${JSON.stringify(text)}`);
      const key = await this.blockKeyFor(ip, pools);
      const freed = key ? await this.releaseOne(key, ip, guard) : null;
      if (freed === null) {
        notAssigned.push(text);
        continue;
      }
      released.push(formatIP(ip));
      if (freed.handleId) await this.changeHandle(freed.handleId, freed.block, -1);
    }
    return { released, notAssigned };
  }

  /** Frees one address in its block; returns the handle it held and the block, or null when it was free. */
  private async releaseOne(
    key: string,
    ip: IP,
    guard?: { handleId?: string; sequenceNumber?: number },
  ): Promise<{ handleId: string; block: string } | null> {
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const kv = await this.store.get(key);
      if (!kv) return null;
      const b = JSON.parse(kv.value) as BlockData;
      const ord = ipOrdinal(b, ip);
      if (ord === null) return null;
      const attr = attributeOf(b, ord);
      if (!attr) return null;
      if (guard?.handleId !== undefined && attr.handle_id !== guard.handleId) {
        throw new IPAMError(`IP ${formatIP(ip)} is held by handle ${attr.handle_id ?? '<none>'}, not ${guard.handleId}`);
      }
      if (guard?.sequenceNumber !== undefined && b.sequenceNumberForAllocation[String(ord)] !== guard.sequenceNumber) {
        throw new IPAMError(`IP ${formatIP(ip)} was re-allocated since the report was made (sequence number changed)`);
      }
      releaseOrdinals(b, [ord]);
      try {
        await this.writeReleased(kv, b);
        return { handleId: attr.handle_id ?? '', block: b.cidr };
      } catch (e) {
        if (!isRetryable(e)) throw e;
        await backoff(attempt);
      }
    }
    throw new IPAMError(RETRY_MESSAGE);
  }

  // ---- affinities --------------------------------------------------------------------------

  /**
   * Releases `host`'s affinity to a block, as Calico's releaseBlockAffinity: the affinity is marked
   * `pendingDeletion` first (so no allocator on the host picks the block again), then an empty block
   * is deleted or a non-empty one loses its affinity (CAS on the block), then the affinity goes.
   * With `mustBeEmpty`, a block holding any address is left as it is (the affinity is restored) and
   * false is returned. A block affine to another host only loses this host's stale affinity record.
   */
  async releaseBlockAffinity(host: string, blockCidr: string, opts: { mustBeEmpty?: boolean } = {}): Promise<boolean> {
    const cidr = parseCIDR(blockCidr);
    if (!cidr) throw new IPAMError(`invalid block CIDR ${JSON.stringify(blockCidr)}`);
    const affKey = affinityKey(host, cidr);
    const setAffinity = async (state: AffinityData['state']) => {
      const kv = await this.store.get(affKey);
      if (kv) await this.store.apply(affKey, JSON.stringify({ state, deleted: false }));
    };
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const bkv = await this.store.get(blockKey(cidr));
      const b = bkv ? (JSON.parse(bkv.value) as BlockData) : null;
      const mine = b !== null && b.affinity === `host:${host}`;
      if (mine && opts.mustBeEmpty && !isEmpty(b)) {
        await setAffinity('confirmed');
        return false;
      }
      try {
        if (mine) {
          await setAffinity('pendingDeletion');
          if (isEmpty(b)) await this.store.delete(bkv!.key, bkv!.revision);
          else await this.store.update(bkv!.key, JSON.stringify({ ...b, affinity: null }), bkv!.revision);
        }
        const aff = await this.store.get(affKey);
        if (aff) await this.store.delete(affKey, aff.revision);
        return true;
      } catch (e) {
        if (!isRetryable(e)) throw e;
        await backoff(attempt);
      }
    }
    throw new IPAMError(RETRY_MESSAGE);
  }

  /**
   * Releases every block affinity of `host` (its affinity records and the blocks marked
   * `host:<host>`), as Calico's ReleaseHostAffinities. With `mustBeEmpty`, blocks still holding
   * addresses are kept. Returns the blocks released and those kept.
   */
  async releaseHostAffinities(host: string, opts: { mustBeEmpty?: boolean } = {}): Promise<{ released: string[]; kept: string[] }> {
    const cidrs = new Set<string>();
    for (const kv of (await this.store.list(affinityPrefix(host))).items) {
      const p = parseAffinityKey(kv.key);
      if (p) cidrs.add(p.cidr);
    }
    for (const b of await this.blocks()) if (b.affinity === `host:${host}`) cidrs.add(b.cidr);
    const released: string[] = [];
    const kept: string[] = [];
    for (const c of [...cidrs].sort()) ((await this.releaseBlockAffinity(host, c, opts)) ? released : kept).push(c);
    return { released, kept };
  }

  /** Every block affinity record: host, block CIDR and state. */
  async affinities(): Promise<{ host: string; cidr: string; state: string }[]> {
    const out: { host: string; cidr: string; state: string }[] = [];
    for (const kv of (await this.store.list(affinityPrefix())).items) {
      const p = parseAffinityKey(kv.key);
      if (!p) continue;
      const st = kv.value ? ((JSON.parse(kv.value) as AffinityData).state ?? '') : '';
      out.push({ host: p.host, cidr: p.cidr, state: st || 'confirmed' });
    }
    return out;
  }

  // ---- inspection --------------------------------------------------------------------------

  /**
   * Handles whose ID starts with `prefix` and whose addresses were allocated for `node` (the
   * `node` attribute), e.g. one network's attachments on one node, for garbage collection.
   */
  async handlesOnNode(prefix: string, node: string): Promise<string[]> {
    const { items } = await this.store.list(handleKey(prefix));
    const out: string[] = [];
    for (const kv of items) {
      const handleId = kv.key.slice(handleKey('').length);
      const blocks = Object.keys((JSON.parse(kv.value) as HandleData).block ?? {});
      for (const text of blocks) {
        const cidr = parseCIDR(text);
        const bkv = cidr ? await this.store.get(blockKey(cidr)) : null;
        const b = bkv ? (JSON.parse(bkv.value) as BlockData) : null;
        if (b?.attributes.some((a) => a.handle_id === handleId && a.secondary?.node === node)) {
          out.push(handleId);
          break;
        }
      }
    }
    return out;
  }

  async blocks(version?: IPVersion): Promise<BlockData[]> {
    const { items } = await this.store.list(blockPrefix(version));
    return items.map((kv) => JSON.parse(kv.value) as BlockData);
  }

  /** The addresses a handle holds now (read from its blocks), IPv4 before IPv6; [] when none. */
  async addressesOfHandle(handleId: string): Promise<string[]> {
    const hkv = await this.store.get(handleKey(handleId));
    if (!hkv) return [];
    const out: { version: IPVersion; text: string }[] = [];
    for (const blockText of Object.keys((JSON.parse(hkv.value) as HandleData).block ?? {})) {
      const cidr = parseCIDR(blockText);
      const kv = cidr ? await this.store.get(blockKey(cidr)) : null;
      if (!cidr || !kv) continue;
      for (const o of ordinalsOfHandle(JSON.parse(kv.value) as BlockData, handleId)) {
        out.push({ version: cidr.version, text: formatIP({ version: cidr.version, value: cidr.network + BigInt(o) }) });
      }
    }
    return out.sort((a, b) => a.version - b.version).map((a) => a.text);
  }

  /** Who holds an address: handle and attributes, or null when it is free. */
  async assignment(text: string): Promise<{ handleId?: string; attrs: Record<string, string> } | null> {
    const ip = parseIP(text);
    if (!ip) throw new IPAMError(`invalid IP address ${JSON.stringify(text)}`);
    const key = await this.blockKeyFor(ip, await this.pools());
    const kv = key ? await this.store.get(key) : null;
    if (!kv) return null;
    const b = JSON.parse(kv.value) as BlockData;
    const ord = ipOrdinal(b, ip);
    const attr = ord === null ? null : attributeOf(b, ord);
    return attr ? { handleId: attr.handle_id, attrs: attr.secondary ?? {} } : null;
  }
}

function wholeBlockReserved(cidr: CIDR, reserved: (ip: IP) => boolean): boolean {
  // Cheap test first: if either end is free the block is usable.
  const last = cidr.network + (1n << BigInt((cidr.version === 4 ? 32 : 128) - cidr.prefix)) - 1n;
  if (!reserved({ version: cidr.version, value: cidr.network }) || !reserved({ version: cidr.version, value: last })) {
    return false;
  }
  for (let v = cidr.network; v <= last; v++) if (!reserved({ version: cidr.version, value: v })) return false;
  return true;
}
