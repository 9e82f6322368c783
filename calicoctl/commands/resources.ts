// create | apply | replace | delete | get | patch | label, with calicoctl's flags and messages.
// Every document of a file is validated before anything is written, so a bad file writes nothing.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { type KindInfo, kindFromArg, kindInfo } from '../../libcalico-go/lib/apis/v3/kinds.js';
import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';
import { parseDocuments } from '../../libcalico-go/lib/apis/v3/parse.js';
import { validateResource } from '../../libcalico-go/lib/apis/v3/validate.js';
import { ResourceClient } from '../../libcalico-go/lib/clientv3/resources.js';
import { convertK8sNetworkPolicy, isK8sNetworkPolicy } from '../../libcalico-go/lib/policy/k8s.js';
import { renderCustomColumns, renderGet } from '../printers/get-columns.js';
import { type ParsedArgs, UsageError, flag, flagBool } from './args.js';
import { compatVersion } from '../printers/compat.js';
import { asDocument, toJson, toYaml } from './output.js';

export interface Io {
  out: (s: string) => void;
  readStdin: () => string;
}

function readInput(file: string, io: Io): { text: string; source: string } {
  if (file === '-') return { text: io.readStdin(), source: 'stdin' };
  try {
    return { text: readFileSync(file, 'utf8'), source: file };
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}

function kindArg(arg: string | undefined): KindInfo {
  if (!arg) throw new UsageError('a resource type is required, e.g. "ippool"');
  const k = kindFromArg(arg);
  if (!k) throw new UsageError(`resource type ${JSON.stringify(arg)} is not supported`);
  return k;
}

/** Parses and validates every document up front; pools in the same file are checked against each other. */
async function loadAndValidate(client: ResourceClient, p: ParsedArgs, io: Io): Promise<Resource[]> {
  const file = flag(p, 'filename');
  if (!file) throw new UsageError('-f/--filename is required');
  const { text, source } = readInput(file, io);
  const docs = parseDocuments(text, source);
  if (docs.length === 0) throw new Error(`no resources found in ${source}`);
  const defaultNs = flag(p, 'namespace');
  const existingPools = await client.list('IPPool');
  const out: Resource[] = [];
  for (const raw of docs) {
    // A Kubernetes networking.k8s.io/v1 NetworkPolicy is stored as the Calico policy it becomes.
    const doc = isK8sNetworkPolicy(raw) ? convertK8sNetworkPolicy(raw, defaultNs ?? 'default') : raw;
    const d = doc as Resource;
    if (defaultNs && d?.metadata && d.metadata.namespace === undefined && kindInfo(d.kind)?.namespaced) {
      d.metadata.namespace = defaultNs;
    }
    const batchPools = out.filter((r) => r.kind === 'IPPool');
    const others = existingPools.filter((e) => !batchPools.some((b) => b.metadata.name === e.metadata.name));
    out.push(validateResource(doc, { pools: [...others, ...batchPools] }));
  }
  return out;
}

function summary(verb: string, rs: Resource[]): string {
  const kinds = new Set(rs.map((r) => r.kind));
  return kinds.size === 1
    ? `Successfully ${verb} ${rs.length} '${rs[0]!.kind}' resource(s)`
    : `Successfully ${verb} ${rs.length} resource(s)`;
}

async function writeAll(
  verb: 'created' | 'applied' | 'replaced',
  rs: Resource[],
  op: (r: Resource) => Promise<Resource>,
  io: Io,
  skipExists = false,
): Promise<void> {
  const done: Resource[] = [];
  for (const r of rs) {
    try {
      done.push(await op(r));
    } catch (e) {
      if (skipExists && /already exists/.test((e as Error).message)) {
        done.push(r);
        continue;
      }
      const head =
        done.length === 0
          ? `Failed to ${verb.replace(/d$/, '').replace(/ie$/, 'y')} any '${r.kind}' resources: `
          : `Partial success: ${verb} the first ${done.length} out of ${rs.length} resources:\nHit error: `;
      throw new Error(head + (e as Error).message);
    }
  }
  io.out(summary(verb, done) + '\n');
}

export async function cmdCreate(store: Backend, p: ParsedArgs, io: Io): Promise<void> {
  const client = new ResourceClient(store);
  const rs = await loadAndValidate(client, p, io);
  await writeAll('created', rs, (r) => client.create(r), io, flagBool(p, 'skip-exists'));
}

export async function cmdApply(store: Backend, p: ParsedArgs, io: Io): Promise<void> {
  const client = new ResourceClient(store);
  const rs = await loadAndValidate(client, p, io);
  await writeAll('applied', rs, (r) => client.apply(r), io);
}

export async function cmdReplace(store: Backend, p: ParsedArgs, io: Io): Promise<void> {
  const client = new ResourceClient(store);
  const rs = await loadAndValidate(client, p, io);
  await writeAll('replaced', rs, (r) => client.update(r), io);
}

function targetNamespace(k: KindInfo, p: ParsedArgs): string | undefined {
  return k.namespaced ? (flag(p, 'namespace') ?? 'default') : undefined;
}

export async function cmdDelete(store: Backend, p: ParsedArgs, io: Io): Promise<void> {
  const client = new ResourceClient(store);
  const skip = flagBool(p, 'skip-not-exists');
  let targets: { kind: string; name: string; namespace?: string }[];
  if (flag(p, 'filename')) {
    const { text, source } = readInput(flag(p, 'filename')!, io);
    targets = parseDocuments(text, source).map((d) => {
      const r = (isK8sNetworkPolicy(d) ? convertK8sNetworkPolicy(d, flag(p, 'namespace') ?? 'default') : d) as Resource;
      const k = kindInfo(r?.kind);
      if (!k) throw new Error(`${source}: unknown kind ${JSON.stringify(r?.kind)}`);
      return { kind: k.kind, name: r.metadata?.name, namespace: k.namespaced ? (r.metadata?.namespace ?? 'default') : undefined };
    });
  } else {
    const [kindText, ...names] = p.positional;
    const k = kindArg(kindText);
    if (names.length === 0) throw new UsageError(`a name is required to delete ${k.kind} resources`);
    targets = names.map((name) => ({ kind: k.kind, name, namespace: targetNamespace(k, p) }));
  }
  let n = 0;
  for (const t of targets) {
    try {
      await client.delete(t.kind, t.name, t.namespace);
      n++;
    } catch (e) {
      if (skip && /does not exist/.test((e as Error).message)) continue;
      throw n === 0
        ? e
        : new Error(`Partial success: deleted the first ${n} out of ${targets.length} resources:\nHit error: ${(e as Error).message}`);
    }
  }
  const kinds = new Set(targets.map((t) => t.kind));
  io.out(
    (kinds.size === 1 ? `Successfully deleted ${n} '${targets[0]!.kind}' resource(s)` : `Successfully deleted ${n} resource(s)`) + '\n',
  );
}

async function globalAS(client: ResourceClient): Promise<string> {
  const bgp = await client.get('BGPConfiguration', 'default');
  const asn = (bgp?.spec as { asNumber?: number | string } | undefined)?.asNumber;
  return String(asn ?? 64512);
}

export async function cmdGet(store: Backend, p: ParsedArgs, io: Io): Promise<void> {
  const client = new ResourceClient(store);
  const output = flag(p, 'output') ?? 'ps';
  const allNs = flagBool(p, 'all-namespaces');
  let kind: KindInfo;
  let items: Resource[];
  let single = false;
  if (flag(p, 'filename')) {
    const { text, source } = readInput(flag(p, 'filename')!, io);
    const wanted = parseDocuments(text, source) as Resource[];
    kind = kindArg(wanted[0]?.kind);
    items = [];
    for (const w of wanted) {
      const got = await client.get(w.kind, w.metadata?.name, kindInfo(w.kind)?.namespaced ? (w.metadata?.namespace ?? 'default') : undefined);
      if (!got) throw new Error(`resource does not exist: ${w.kind}(${w.metadata?.name})`);
      items.push(got);
    }
    single = wanted.length === 1;
  } else {
    const [kindText, ...names] = p.positional;
    kind = kindArg(kindText);
    const ns = kind.namespaced && !allNs ? (flag(p, 'namespace') ?? 'default') : undefined;
    if (names.length > 0) {
      items = [];
      for (const name of names) {
        const got = await client.get(kind.kind, name, ns);
        if (!got) throw new Error(`resource does not exist: ${kind.kind}(${ns ? ns + '/' : ''}${name})`);
        items.push(got);
      }
      single = names.length === 1;
    } else {
      items = await client.list(kind.kind, ns);
    }
  }
  if (output === 'yaml') return io.out(toYaml(asDocument(kind.kind, items, single, await store.revision())));
  if (output === 'json') return io.out(toJson(asDocument(kind.kind, items, single, await store.revision())));
  const showNamespace = kind.namespaced && (allNs || flag(p, 'namespace') !== undefined);
  const ctx = { globalASNumber: await globalAS(client), calicoVersion: compatVersion() };
  if (output.startsWith('custom-columns=')) {
    const headings = output.slice('custom-columns='.length).split(',').filter((h) => h !== '');
    return io.out(renderCustomColumns(headings, items, { kind: kind.kind, ctx }));
  }
  if (output !== 'ps' && output !== 'wide') {
    throw new UsageError(`unrecognized output format ${JSON.stringify(output)}: use ps, wide, yaml, json or custom-columns=…`);
  }
  io.out(renderGet(kind.kind, items, { wide: output === 'wide', showNamespace, ctx }));
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export async function cmdPatch(store: Backend, p: ParsedArgs, io: Io): Promise<void> {
  const client = new ResourceClient(store);
  const [kindText, name] = p.positional;
  const k = kindArg(kindText);
  if (!name) throw new UsageError(`a name is required to patch a ${k.kind}`);
  const patchText = flag(p, 'patch');
  if (!patchText) throw new UsageError('-p/--patch is required');
  let patch: unknown;
  try {
    patch = parseYaml(patchText);
  } catch (e) {
    throw new Error(`patch is not valid JSON or YAML: ${(e as Error).message}`);
  }
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    throw new Error(`patch must be an object, got ${JSON.stringify(patchText)}`);
  }
  const ns = targetNamespace(k, p);
  const current = await client.get(k.kind, name, ns);
  if (!current) throw new Error(`resource does not exist: ${k.kind}(${ns ? ns + '/' : ''}${name})`);
  const patched = mergePatch(current, patch) as Resource;
  patched.metadata = { ...patched.metadata, name: current.metadata.name, namespace: current.metadata.namespace };
  await client.update(patched);
  io.out(`Successfully patched 1 '${k.kind}' resource\n`);
}

export async function cmdLabel(store: Backend, p: ParsedArgs, io: Io): Promise<void> {
  const client = new ResourceClient(store);
  const [kindText, name, label] = p.positional;
  const k = kindArg(kindText);
  if (!name || !label) throw new UsageError('usage: label <KIND> <NAME> <key>=<value> [--overwrite] | <key> --remove');
  const ns = targetNamespace(k, p);
  const current = await client.get(k.kind, name, ns);
  if (!current) throw new Error(`resource does not exist: ${k.kind}(${ns ? ns + '/' : ''}${name})`);
  const labels = { ...(current.metadata.labels ?? {}) };
  if (flagBool(p, 'remove')) {
    if (!(label in labels)) throw new Error(`can not remove label of ${k.kind} ${name}: label key ${label} is not found`);
    delete labels[label];
    await client.update({ ...current, metadata: { ...current.metadata, labels } });
    return io.out(`Successfully removed label ${label} from ${k.kind} ${name}\n`);
  }
  const eq = label.indexOf('=');
  if (eq <= 0) throw new UsageError(`invalid label ${JSON.stringify(label)}: expected <key>=<value>`);
  const key = label.slice(0, eq);
  const value = label.slice(eq + 1);
  if (key in labels && !flagBool(p, 'overwrite')) {
    throw new Error(`failed to set label of ${k.kind} ${name}: key ${key} is already present; use --overwrite`);
  }
  labels[key] = value;
  await client.update({ ...current, metadata: { ...current.metadata, labels } });
  io.out(`Successfully set label ${key} on ${k.kind} ${name}\n`);
}
