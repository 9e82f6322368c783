// `ipam show | check | release | configure`, calicoctl's IPAM verbs.
import { readFileSync, writeFileSync } from 'node:fs';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { handleKey } from '../../libcalico-go/lib/backend/keys.js';
import { ResourceClient } from '../../libcalico-go/lib/clientv3/resources.js';
import { IPAM } from '../../libcalico-go/lib/ipam/ipam.js';
import { formatIP, parseIP } from '../../libcalico-go/lib/net/ip.js';
import { ordinalIP } from '../../libcalico-go/lib/ipam/block.js';
import { renderIpamCheck } from '../printers/ipam-check.js';
import {
  type BorrowedIP,
  classifyBorrowed,
  renderIpamBorrowed,
  renderIpamConfiguration,
  renderIpamShow,
  renderIpamShowIP,
} from '../printers/ipam-show.js';
import { type ParsedArgs, UsageError, flag, flagBool } from './args.js';
import { compatVersion } from '../printers/compat.js';
import { type Allocation, type CheckReport, runCheck, usage } from './ipam-data.js';
import type { Io } from './resources.js';
import { TORTIE_VERSION } from './version.js';

const noSelector = () => true;

export async function cmdIpamShow(store: Backend, p: ParsedArgs, io: Io): Promise<void> {
  const ipam = new IPAM(store, { selects: noSelector });
  const ipText = flag(p, 'ip');
  if (ipText !== undefined) {
    if (!parseIP(ipText)) throw new Error(`invalid IP address ${JSON.stringify(ipText)}`);
    const a = await ipam.assignment(ipText);
    return io.out(
      renderIpamShowIP(ipText, a && { handleId: a.handleId ?? null, activeOwnerAttrs: a.attrs }, { calicoVersion: compatVersion() }),
    );
  }
  if (flagBool(p, 'show-configuration')) {
    return io.out(renderIpamConfiguration(await ipam.config()));
  }
  const blocks = await ipam.blocks();
  if (flagBool(p, 'show-borrowed')) {
    const rows: BorrowedIP[] = [];
    let unclassified = 0;
    for (const b of blocks) {
      b.allocations.forEach((idx, ord) => {
        if (idx === null) return;
        const c = b.cidr;
        const ip = formatIP(ordinalIP(b, ord));
        const r = classifyBorrowed({ ip, block: c, affinity: b.affinity, attrs: b.attributes[idx]?.secondary });
        if (r === 'unclassified') unclassified++;
        else if (r) rows.push(r);
      });
    }
    return io.out(renderIpamBorrowed(rows, unclassified));
  }
  const pools = usage(await ipam.pools(), blocks);
  io.out(renderIpamShow(pools, { showBlocks: flagBool(p, 'show-blocks') }));
}

interface ReportAllocation {
  ip: string;
  handle?: string;
  sequenceNumber?: number;
  attrs: Record<string, string>;
  block: string;
  leaked: boolean;
  inUseBy: string[];
}

interface ReportFile {
  version: string;
  clusterGUID: string;
  datastoreLocked: boolean;
  clusterInformationRevision: string;
  clusterType: string;
  allocations: Record<string, ReportAllocation[]>;
  leakedHandles: { handle: string; revision: string }[];
}

function toReport(r: CheckReport): ReportFile {
  const leaked = new Set(r.leaked.map((a) => a.ip));
  const allocations: Record<string, ReportAllocation[]> = {};
  for (const a of r.allocations) {
    (allocations[a.ip] ??= []).push({
      ip: a.ip,
      handle: a.handle,
      sequenceNumber: a.sequenceNumber,
      attrs: a.attrs,
      block: a.block,
      leaked: leaked.has(a.ip),
      inUseBy: r.inUse.get(a.ip) ?? [],
    });
  }
  return {
    version: r.version,
    clusterGUID: r.clusterGUID,
    datastoreLocked: r.datastoreLocked,
    clusterInformationRevision: r.clusterInformationRevision,
    clusterType: r.clusterType,
    allocations,
    leakedHandles: r.handlesWithoutIPs.map((h) => ({ handle: h, revision: r.handleRevisions.get(h) ?? '' })),
  };
}

const asCheckAllocation = (a: Allocation) => ({ ip: a.ip, handle: a.handle ?? null, attrs: a.attrs, block: a.block });

export async function cmdIpamCheck(store: Backend, p: ParsedArgs, io: Io): Promise<void> {
  const r = await runCheck(store, TORTIE_VERSION);
  io.out(
    renderIpamCheck(
      {
        ...r,
        leaked: r.leaked.map(asCheckAllocation),
        allocations: r.allocations.map(asCheckAllocation),
      },
      { showProblemIPs: flagBool(p, 'show-problem-ips'), showAllIPs: flagBool(p, 'show-all-ips') },
    ),
  );
  const out = flag(p, 'output');
  if (out) writeFileSync(out, JSON.stringify(toReport(r), null, 2) + '\n');
}

function readReport(file: string): ReportFile {
  let doc: ReportFile;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8')) as ReportFile;
  } catch (e) {
    throw new Error(`cannot read report ${file}: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || typeof doc.allocations !== 'object') {
    throw new Error(`${file} is not an ipam check report`);
  }
  return doc;
}

async function releaseFromReports(store: Backend, files: string[], force: boolean, io: Io): Promise<void> {
  const reports = files.map((f) => ({ file: f, doc: readReport(f) }));
  const client = new ResourceClient(store);
  const ci = await client.get('ClusterInformation', 'default');
  const spec = (ci?.spec ?? {}) as { clusterGUID?: string; datastoreReady?: boolean };
  for (const { file, doc } of reports) {
    if ((doc.clusterGUID ?? '') !== (spec.clusterGUID ?? '')) {
      throw new Error(`cluster does not match the provided report (${file}): mismatched cluster GUID. Refusing to release`);
    }
    if (doc.version !== TORTIE_VERSION) {
      if (!force) throw new Error(`report ${file} was produced using a different version of tortiectl (${doc.version}); re-run with --force to use it`);
      io.out('WARNING: Report was produced using a different version of calicoctl. Ignoring due to --force option\n');
    }
  }
  const revision = ci?.metadata.resourceVersion ?? '';
  if (reports.every(({ doc }) => doc.clusterInformationRevision !== revision)) {
    throw new Error('the provided reports are all stale - the datastore has changed since they were produced; run ipam check again');
  }
  if (spec.datastoreReady !== false) {
    if (!force) throw new Error('data store is not locked. Either lock the data store, or re-run with --force');
    io.out('WARNING: Data store is not locked. Ignoring due to --force option\n');
  }
  // Only what every report calls leaked is released, each guarded by handle and sequence number.
  const leakedIn = (doc: ReportFile) =>
    new Map(Object.values(doc.allocations).flat().filter((a) => a.leaked).map((a) => [`${a.ip}|${a.handle}|${a.sequenceNumber}`, a]));
  const [first, ...rest] = reports.map(({ doc }) => leakedIn(doc));
  const toRelease = [...(first ?? new Map()).entries()].filter(([k]) => rest.every((m) => m.has(k))).map(([, a]) => a);
  const ipam = new IPAM(store, { selects: noSelector });
  if (toRelease.length === 0) {
    io.out("Report didn't contain any leaked IPs to clean up.\n");
  } else {
    io.out(`Releasing ${toRelease.length} old IPs...\n`);
    let released = 0;
    let gone = 0;
    for (const a of toRelease) {
      try {
        const r = await ipam.releaseIPs([a.ip], { handleId: a.handle, sequenceNumber: a.sequenceNumber });
        if (r.released.length) released++;
        else gone++;
      } catch {
        gone++; // re-allocated or changed since the report: leave it alone
      }
    }
    io.out(`Released ${released} IPs successfully\n`);
    if (gone) io.out(`${gone} addresses marked as leaked in the report had already been cleaned up.\n`);
  }
  const handleSets = reports.map(({ doc }) => new Map((doc.leakedHandles ?? []).map((h) => [h.handle, h.revision])));
  const handles = [...(handleSets[0] ?? new Map()).entries()].filter(([h, rev]) => handleSets.every((m) => m.get(h) === rev));
  if (handles.length === 0) {
    io.out("Report didn't contain any handles to clean up.\n");
  } else {
    io.out(`Deleting ${handles.length} handles...\n`);
    io.out("Key: '.' = Deleted OK; 'x' = skip, handle missing/changed.\n");
    let ok = 0;
    let skipped = 0;
    let progress = '';
    for (const [h, rev] of handles) {
      try {
        await store.delete(handleKey(h), rev);
        ok++;
        progress += '.';
      } catch {
        skipped++;
        progress += 'x';
      }
    }
    io.out(`${progress}\n\nReleased ${ok} handles; ${skipped} skipped; 0 errors.\n`);
  }
  io.out('You may now unlock the data store.\n');
}

export async function cmdIpamRelease(store: Backend, p: ParsedArgs, io: Io): Promise<void> {
  const reports = p.flags.get('from-report') ?? [];
  const ipText = flag(p, 'ip');
  if (reports.length > 0 && ipText) throw new UsageError('give either --ip or --from-report, not both');
  if (reports.length > 0) return releaseFromReports(store, reports, flagBool(p, 'force'), io);
  if (!ipText) throw new UsageError('ipam release needs --ip=<IP> or --from-report=<FILE>');
  if (!parseIP(ipText)) throw new Error(`invalid IP address ${JSON.stringify(ipText)}`);
  const ipam = new IPAM(store, { selects: noSelector });
  const r = await ipam.releaseIPs([ipText]);
  if (r.notAssigned.length) throw new Error(`IP address ${ipText} is not assigned`);
  io.out(`Successfully released IP address ${ipText}\n`);
}

export async function cmdIpamConfigure(store: Backend, p: ParsedArgs, io: Io): Promise<void> {
  const v = flag(p, 'strictaffinity');
  if (v !== 'true' && v !== 'false') {
    throw new UsageError(`--strictaffinity must be true or false${v === undefined ? '' : `, got ${JSON.stringify(v)}`}`);
  }
  const client = new ResourceClient(store);
  const current = await client.get('IPAMConfiguration', 'default');
  const spec = { autoAllocateBlocks: true, ...(current?.spec ?? {}), strictAffinity: v === 'true' };
  await client.apply({ apiVersion: 'projectcalico.org/v3', kind: 'IPAMConfiguration', metadata: { name: 'default' }, spec });
  io.out(`Successfully set StrictAffinity to: ${v}\n`);
}
