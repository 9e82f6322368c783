// Entry point of bin/tortiectl: calicoctl's verbs and flags over Tortie's datastores.
import { readFileSync } from 'node:fs';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { type FlagSpec, type ParsedArgs, UsageError, flag, parseArgs } from '../commands/args.js';
import { connect } from '../commands/client.js';
import { CLUSTER_USAGE, cmdCluster } from '../commands/cluster.js';
import { CONNECTIVITY_USAGE, cmdConnectivity } from '../commands/connectivity.js';
import { cmdIpamCheck, cmdIpamConfigure, cmdIpamRelease, cmdIpamShow } from '../commands/ipam.js';
import { NODE_USAGE, cmdNodeChecksystem, cmdNodeStatus } from '../commands/node.js';
import { POLICY_USAGE, cmdPolicy } from '../commands/policy.js';
import { type Io, cmdApply, cmdCreate, cmdDelete, cmdGet, cmdLabel, cmdPatch, cmdReplace } from '../commands/resources.js';
import { TRACE_USAGE, cmdTrace } from '../commands/trace.js';
import { cmdVersion } from '../commands/version.js';

const USAGE = `Usage:
  tortiectl [options] <command> [<args>...]

    create       Create a resource by file, directory or stdin.
    replace      Replace a resource by file, directory or stdin.
    apply        Apply a resource by file, directory or stdin.  This creates a resource
                 if it does not exist, and replaces a resource if it does exists.
    patch        Patch a pre-exisiting resource in place.
    delete       Delete a resource identified by file, directory, stdin or resource type and
                 name.
    get          Get a resource identified by file, directory, stdin or resource type and
                 name.
    label        Add or update labels of resources.
    ipam         IP address management (show, check, release, configure).
    node         Commands for this node, run on it as root: status (BGP peers, as
                 "calicoctl node status"; --run-dir=<dir> picks the agent whose
                 <dir>/cni.sock answers, default $TORTIE_RUN_DIR or /var/run/tortie)
                 and checksystem (what this host lacks to run Tortie).
    cluster      Check the whole cluster: "cluster check [-o json] [--window=10m]" lists
                 what is wrong (drift, routes, restarts, MTU, odd nodes, BGP, IPAM).
    policy       Explain policy: "policy explain SRC DST [PORT/PROTO]" tells whether a
                 packet is allowed and which tier, policy and rule decides.
    connectivity Test the network end to end: "connectivity test" deploys probe Pods on every
                 node (Kubernetes datastore) and checks pod↔pod, host↔pod, Service, MTU, policy.
    trace        The path of a packet: "trace SRC DST [PORT/PROTO]" shows it hop by hop
                 (veths, routes, next nodes, policy at each end) and where it would drop.
    version      Display the version of this binary.

Options:
  -h --help                    Show this screen.
  -c --config=<config>         Path to the file containing connection configuration in
                               YAML or JSON format.
                               [default: /etc/tortie/tortiectl.cfg]

Datastore selection (when no config file): DATASTORE_TYPE (embedded | etcdv3), DATASTORE_PATH,
ETCD_ENDPOINTS, ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE.
`;

const COMMON: FlagSpec[] = [
  { name: 'config', short: 'c', value: true },
  { name: 'help', short: 'h' },
  { name: 'allow-version-mismatch' },
  { name: 'context', value: true },
];
const RESOURCE: FlagSpec[] = [
  ...COMMON,
  { name: 'filename', short: 'f', value: true },
  { name: 'output', short: 'o', value: true },
  { name: 'namespace', short: 'n', value: true },
  { name: 'all-namespaces', short: 'A' },
  { name: 'skip-exists' },
  { name: 'skip-not-exists' },
  { name: 'skip-empty' },
  { name: 'patch', short: 'p', value: true },
  { name: 'overwrite' },
  { name: 'remove' },
];
const IPAM_FLAGS: FlagSpec[] = [
  ...COMMON,
  { name: 'ip', value: true },
  { name: 'show-blocks' },
  { name: 'show-borrowed' },
  { name: 'show-configuration' },
  { name: 'show-problem-ips' },
  { name: 'show-all-ips' },
  { name: 'output', short: 'o', value: true },
  { name: 'from-report', value: true, repeat: true },
  { name: 'force' },
  { name: 'kubeconfig', value: true },
  { name: 'strictaffinity', value: true },
];

const NODE_FLAGS: FlagSpec[] = [...COMMON, { name: 'run-dir', value: true }];

type Handler = (store: Backend, p: ParsedArgs, io: Io) => Promise<void>;

const resourceVerbs: Record<string, Handler> = {
  create: cmdCreate,
  apply: cmdApply,
  replace: cmdReplace,
  delete: cmdDelete,
  get: cmdGet,
  patch: cmdPatch,
  label: cmdLabel,
};
const ipamVerbs: Record<string, Handler> = {
  show: cmdIpamShow,
  check: cmdIpamCheck,
  release: cmdIpamRelease,
  configure: cmdIpamConfigure,
};

async function withStore(p: ParsedArgs, fn: (s: Backend) => Promise<void>): Promise<void> {
  const store = await connect(flag(p, 'config'), process.env);
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const io: Io = { out: (s) => process.stdout.write(s), readStdin: () => readFileSync(0, 'utf8') };
  // Global options may come before the verb.
  const verbAt = argv.findIndex((a, i) => !a.startsWith('-') && !['-c', '--config'].includes(argv[i - 1] ?? ''));
  const verb = verbAt >= 0 ? argv[verbAt] : undefined;
  const rest = verbAt >= 0 ? [...argv.slice(0, verbAt), ...argv.slice(verbAt + 1)] : argv;
  if (!verb || verb === 'help') {
    io.out(USAGE);
    if (!verb && !rest.some((a) => a === '-h' || a === '--help')) process.exitCode = 1;
    return;
  }
  const resourceVerb = resourceVerbs[verb];
  if (resourceVerb) {
    const p = parseArgs(rest, RESOURCE);
    return withStore(p, (s) => resourceVerb(s, p, io));
  }
  if (verb === 'ipam') {
    const p = parseArgs(rest, IPAM_FLAGS);
    const sub = p.positional.shift();
    const h = sub ? ipamVerbs[sub] : undefined;
    if (!h) throw new UsageError(`ipam needs one of: ${Object.keys(ipamVerbs).join(', ')}${sub ? ` (got ${JSON.stringify(sub)})` : ''}`);
    return withStore(p, (s) => h(s, p, io));
  }
  if (verb === 'node') {
    const p = parseArgs(rest, NODE_FLAGS);
    const sub = p.positional.shift();
    if (flag(p, 'help') === 'true') return io.out(NODE_USAGE);
    const h = sub === 'status' ? cmdNodeStatus : sub === 'checksystem' ? cmdNodeChecksystem : undefined;
    if (!h) throw new UsageError(`node needs one of: status, checksystem${sub ? ` (got ${JSON.stringify(sub)})` : ''}`);
    return h(p, io);
  }
  if (verb === 'cluster') {
    const p = parseArgs(rest, [...COMMON, { name: 'output', short: 'o', value: true }, { name: 'window', value: true }]);
    if (flag(p, 'help') === 'true') return io.out(CLUSTER_USAGE);
    return withStore(p, (s) => cmdCluster(s, p, io));
  }
  if (verb === 'policy') {
    const p = parseArgs(rest, COMMON);
    if (flag(p, 'help') === 'true') return io.out(POLICY_USAGE);
    return withStore(p, (s) => cmdPolicy(s, p, io));
  }
  if (verb === 'connectivity') {
    const p = parseArgs(rest, [...COMMON, { name: 'json' }, { name: 'image', value: true }]);
    if (flag(p, 'help') === 'true') return io.out(CONNECTIVITY_USAGE);
    return cmdConnectivity(p, io, () => connect(flag(p, 'config'), process.env));
  }
  if (verb === 'trace') {
    const p = parseArgs(rest, [...COMMON, { name: 'output', short: 'o', value: true }]);
    if (flag(p, 'help') === 'true') return io.out(TRACE_USAGE);
    return withStore(p, (s) => cmdTrace(s, p, io));
  }
  if (verb === 'version') {
    const p = parseArgs(rest, [...COMMON, { name: 'client' }, { name: 'poll', value: true }]);
    return cmdVersion(() => connect(flag(p, 'config'), process.env), p, io);
  }
  throw new UsageError(`unknown command ${JSON.stringify(verb)}; run "tortiectl --help" for the list`);
}

try {
  await main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}
