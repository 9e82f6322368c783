// The images scripts/build-images.sh builds, checked as a container runtime sees them: a throwaway
// containerd (own root, state, socket and config in a temp dir, inside a node host: a network and
// mount namespace of our own) imports each archive into the kubelet's namespace k8s.io under the
// exact reference the kubelet and the e2e framework ask for, with the archive's manifest digest;
// then pause holds a pod network namespace, agnhost runs in it as the Netpol suite runs it
// (`serve-hostname --tcp`, probed with `agnhost connect`), and real packets from the node reach it
// over a veth we wire. Also: the build is reproducible (a second build of every image gives the same
// bytes), and the helper and the script agree on names and versions.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  AGNHOST_TAG,
  COREDNS_VERSION_DEFAULT,
  ctrImportArgv,
  e2eBinaries,
  IMAGE_NAMES,
  imageArchive,
  imageRef,
  imagesSkipReason,
  K8S_VERSION_DEFAULT,
  missingE2eBinaries,
  PAUSE_TAG,
  readImageArchive,
  tarEntries,
} from './images.js';
import { NodeHost, nodeUnavailableReason } from './runtimes/node.js';
import { randomSuffix } from './runtimes/common.js';
import { sleep, terminatePids, waitExit } from './runtimes/proc.js';

const root = new URL('../..', import.meta.url).pathname;
const script = join(root, 'scripts/build-images.sh');
const CTR = '/usr/bin/ctr';
const CONTAINERD = '/usr/bin/containerd';
const sha256 = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

test('the helper and scripts/build-images.sh agree on every image reference and archive path', () => {
  const text = readFileSync(script, 'utf8');
  assert.match(text, new RegExp(`K8S_VERSION="\\$\\{TORTIE_K8S_VERSION:-${K8S_VERSION_DEFAULT.replace(/\./g, '\\.')}\\}"`));
  assert.match(text, new RegExp(`COREDNS_VERSION="\\$\\{TORTIE_COREDNS_VERSION:-${COREDNS_VERSION_DEFAULT.replace(/\./g, '\\.')}\\}"`));
  for (const cache of [undefined, '/c']) {
    const env = { ...process.env, ...(cache ? { TORTIE_CACHE: cache } : {}) };
    const r = spawnSync(script, ['--list'], { encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stderr);
    const listed = r.stdout.trim().split('\n').map((l) => l.split('\t'));
    assert.deepEqual(
      listed,
      IMAGE_NAMES.map((n) => [imageRef(n, env), imageArchive(n, env)]),
    );
  }
  assert.equal(imageArchive('agnhost', { TORTIE_CACHE: '/c' }), `/c/images/agnhost-${AGNHOST_TAG}.tar`);
  assert.equal(e2eBinaries({ TORTIE_CACHE: '/c' }).e2eTest, `/c/k8s/${K8S_VERSION_DEFAULT}/bin/e2e.test`);
});

// The tags are the ones Kubernetes v1.34.4 itself names: read from its source in the module cache.
const k8sSrc = join(process.env.TORTIE_CACHE || '/var/cache/tortie', 'go/mod', `k8s.io/kubernetes@${K8S_VERSION_DEFAULT}`);
test('the tags are those k8s.io/kubernetes v1.34.4 expects (e2e manifest, kubeadm constants)', { skip: existsSync(k8sSrc) ? false : `needs k8s.io/kubernetes@${K8S_VERSION_DEFAULT} in the module cache (scripts/build-kubernetes.sh downloads it)` }, () => {
  const manifest = readFileSync(join(k8sSrc, 'test/utils/image/manifest.go'), 'utf8');
  assert.match(manifest, new RegExp(`configs\\[Agnhost\\] = Config\\{list\\.PromoterE2eRegistry, "agnhost", "${AGNHOST_TAG.replace(/\./g, '\\.')}"\\}`));
  assert.match(manifest, new RegExp(`configs\\[Pause\\] = Config\\{list\\.GcRegistry, "pause", "${PAUSE_TAG.replace(/\./g, '\\.')}"\\}`));
  assert.match(manifest, /PromoterE2eRegistry:\s+"registry\.k8s\.io\/e2e-test-images"/);
  const kubeadm = readFileSync(join(k8sSrc, 'cmd/kubeadm/app/constants/constants.go'), 'utf8');
  assert.match(kubeadm, new RegExp(`CoreDNSVersion = "${COREDNS_VERSION_DEFAULT.replace(/\./g, '\\.')}"`));
  assert.match(kubeadm, new RegExp(`PauseVersion = "${PAUSE_TAG.replace(/\./g, '\\.')}"`));
});

const skipImages = imagesSkipReason();

describe('the image archives', { skip: skipImages }, () => {
  // Tortie's image holds this tree's dist/: bring the cached archive up to date (a no-op when its
  // content hash is unchanged) so that what is checked and run below is the code under test.
  before(() => {
    const r = spawnSync(script, ['--only', 'tortie'], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr);
  });

  test('each is a valid single-platform OCI archive with the expected reference and config', () => {
    for (const n of IMAGE_NAMES) {
      const a = readImageArchive(imageArchive(n));
      assert.equal(a.ref, imageRef(n), n);
      assert.equal(a.index.manifests[0]!.annotations?.['org.opencontainers.image.ref.name'], imageRef(n));
      assert.equal(a.config.os, 'linux');
      assert.equal(a.config.architecture, 'amd64');
      assert.equal(a.config.created, '1970-01-01T00:00:00Z');
      assert.equal(a.config.config.WorkingDir, '/');
      assert.ok(a.config.config.Env?.some((e) => e.startsWith('PATH=/')), `${n}: PATH in Env`);
      // Outer archive: sorted entries (what reproducibility rests on), nothing but the layout.
      assert.deepEqual(a.entries, [...a.entries].sort(), n);
      assert.deepEqual(a.entries.filter((e) => !e.startsWith('blobs/')), ['index.json', 'oci-layout']);
    }
    const cfg = (n: (typeof IMAGE_NAMES)[number]) => readImageArchive(imageArchive(n)).config.config;
    assert.deepEqual(cfg('pause').Entrypoint, ['/pause']);
    assert.equal(cfg('pause').User, '65535:65535');
    assert.deepEqual(cfg('agnhost').Entrypoint, ['/agnhost']);
    assert.deepEqual(cfg('agnhost').Cmd, ['pause']);
    assert.deepEqual(Object.keys(cfg('agnhost').ExposedPorts ?? {}), ['5000/tcp', '80/tcp', '8080/tcp', '8081/tcp', '9376/tcp']);
    assert.deepEqual(cfg('coredns').Entrypoint, ['/coredns']);
    assert.deepEqual(cfg('busybox').Cmd, ['sh']);
    assert.deepEqual(cfg('tortie').Cmd, ['/usr/bin/tortie-node']);
  });

  test('every layer is a sorted tar with fixed times and numeric root ownership', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tortie-img-layers-'));
    try {
      for (const n of IMAGE_NAMES) {
        const arch = imageArchive(n);
        const a = readImageArchive(arch);
        for (const l of a.manifest.layers) {
          assert.equal(l.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
          const hex = l.digest.slice('sha256:'.length);
          const x = spawnSync('tar', ['-xf', arch, '-C', dir, `blobs/sha256/${hex}`]);
          assert.equal(x.status, 0);
          const layer = join(dir, `${n}-${hex}.tar`);
          const z = spawnSync('sh', ['-c', `gzip -dc '${join(dir, 'blobs/sha256', hex)}' > '${layer}'`]);
          assert.equal(z.status, 0);
          const names = tarEntries(layer).map((e) => e.name);
          assert.deepEqual(names, [...names].sort(), `${n}: layer entries sorted`);
          const v = spawnSync('tar', ['--numeric-owner', '--full-time', '-tvf', layer], { encoding: 'utf8' });
          assert.equal(v.status, 0);
          for (const line of v.stdout.trim().split('\n')) {
            assert.match(line, / 1970-01-01 00:00:00 /, `${n}: ${line}`);
          }
          // The layer's diff_id is the sha256 of its uncompressed tar.
          assert.ok(a.config.rootfs.diff_ids.includes(`sha256:${sha256(layer)}`), `${n}: diff_id`);
        }
      }
      // What the Netpol suite and agnhost's Dockerfile need in agnhost's image.
      const files = new Set<string>();
      const arch = imageArchive('agnhost');
      for (const l of readImageArchive(arch).manifest.layers) {
        const hex = l.digest.slice('sha256:'.length);
        const t = spawnSync('sh', ['-c', `tar -xOf '${arch}' 'blobs/sha256/${hex}' | gzip -dc | tar -t`], { encoding: 'utf8' });
        for (const f of t.stdout.split('\n')) files.add(f);
      }
      for (const f of ['agnhost', 'agnhost-2', 'uploads/', 'localhost.crt', 'localhost.key', 'bin/sh', 'bin/busybox', 'usr/bin/nc', 'usr/bin/wget', 'sbin/ip', 'etc/passwd', 'etc/group', 'tmp/']) {
        assert.ok(files.has(f), `agnhost image has ${f}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a second build gives byte-identical archives (same digests)', { timeout: 600_000 }, () => {
    const out = mkdtempSync(join(tmpdir(), 'tortie-img-rebuild-'));
    try {
      const r = spawnSync(script, ['--only', 'images', '--out', out], { encoding: 'utf8', timeout: 590_000 });
      assert.equal(r.status, 0, r.stderr);
      for (const n of IMAGE_NAMES) {
        const again = join(out, imageArchive(n).split('/').pop()!);
        assert.ok(existsSync(again), again);
        assert.equal(sha256(again), sha256(imageArchive(n)), `${n}: archive bytes`);
        assert.equal(readImageArchive(again).manifestDigest, readImageArchive(imageArchive(n)).manifestDigest);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

// ------------------------------------------------------------------ a real containerd

const liveSkip = ((): string | false => {
  if (skipImages) return skipImages;
  const why = nodeUnavailableReason();
  if (why) return why;
  for (const b of [CONTAINERD, CTR, '/usr/bin/containerd-shim-runc-v2', '/usr/sbin/runc']) if (!existsSync(b)) return `${b} missing (apt-get install containerd)`;
  return false;
})();

describe('imported into a throwaway containerd and run in our own network namespaces', { skip: liveSkip, timeout: 300_000 }, () => {
  let node: NodeHost | undefined;
  let daemonPid: number | undefined;
  let daemon: ReturnType<NodeHost['spawn']> | undefined;
  let dir = '';
  let address = '';
  const cgroupParent = `/tortie-img-${randomSuffix()}`;
  const tasks: string[] = [];
  const ctr = (args: string[]) => [CTR, '--address', address, '--namespace', 'k8s.io', ...args];
  const run = async (args: string[], timeoutMs = 60_000) => node!.run(ctr(args), { timeoutMs });
  const must = async (args: string[], timeoutMs = 60_000) => {
    const r = await run(args, timeoutMs);
    assert.equal(r.code, 0, `ctr ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const taskPid = async (id: string): Promise<{ pid: number; status: string } | undefined> => {
    const out = await must(['tasks', 'ls']);
    const m = new RegExp(`^${id}\\s+(\\d+)\\s+(\\S+)`, 'm').exec(out);
    return m ? { pid: Number(m[1]), status: m[2]! } : undefined;
  };
  const waitStatus = async (id: string, status: string): Promise<number> => {
    for (let i = 0; i < 600; i++) {
      const t = await taskPid(id);
      if (t?.status === status) return t.pid;
      await sleep(100);
    }
    throw new Error(`task ${id} never ${status}: ${(await run(['tasks', 'ls'])).stdout}`);
  };
  const startTask = async (image: string, id: string, extra: string[], argv: string[] = []): Promise<number> => {
    await must(['run', '-d', '--null-io', '--cgroup', `${cgroupParent}/${id}`, ...extra, image, id, ...argv]);
    tasks.push(id);
    return waitStatus(id, 'RUNNING');
  };

  before(async () => {
    node = await NodeHost.create();
    node.addCgroupParent(cgroupParent);
    dir = join(node.dir, 'containerd');
    for (const d of ['root', 'state', 'opt']) mkdirSync(join(dir, d), { recursive: true });
    address = join(dir, 'containerd.sock');
    const q = JSON.stringify;
    writeFileSync(
      join(dir, 'config.toml'),
      [
        'version = 2',
        `root = ${q(join(dir, 'root'))}`,
        `state = ${q(join(dir, 'state'))}`,
        // Images and tasks only: the kubelet's CRI plugin is not needed to import and run.
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]',
        `  address = ${q(address)}`,
        '[ttrpc]',
        `  address = ${q(address + '.ttrpc')}`,
        '[debug]',
        '  address = ""',
        '[metrics]',
        '  address = ""',
        '[plugins."io.containerd.internal.v1.opt"]',
        `  path = ${q(join(dir, 'opt'))}`,
        '',
      ].join('\n'),
    );
    const d = await node.startDaemon([CONTAINERD, '--config', join(dir, 'config.toml')], {
      logFile: join(dir, 'containerd.log'),
      ready: async () => (await node!.run([CTR, '--address', address, 'version'], { timeoutMs: 5000 })).code === 0,
      timeoutMs: 60_000,
    });
    daemonPid = d.pid;
    daemon = d.child;
  });

  after(async () => {
    if (node) {
      for (const id of tasks.reverse()) {
        await run(['tasks', 'kill', '--signal', 'SIGKILL', id], 10_000).catch(() => undefined);
        for (let i = 0; i < 50 && (await taskPid(id).catch(() => undefined))?.status === 'RUNNING'; i++) await sleep(100);
        await run(['tasks', 'delete', id], 10_000).catch(() => undefined);
        await run(['containers', 'delete', id], 10_000).catch(() => undefined);
      }
      if (daemonPid !== undefined) await terminatePids([daemonPid], 5000);
      if (daemon) await waitExit(daemon, 2000);
      await node.close();
    }
  });

  test('ctr -n k8s.io images import: every image under its exact reference with the archive\'s manifest digest', async () => {
    for (const n of IMAGE_NAMES) {
      const argv = ctrImportArgv(address, n);
      const r = await node!.run(argv, { timeoutMs: 180_000 });
      assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
    }
    const ls = await must(['images', 'ls']);
    const rows = new Map(ls.trim().split('\n').slice(1).map((l) => l.split(/\s+/)).map((f) => [f[0]!, f]));
    for (const n of IMAGE_NAMES) {
      const want = readImageArchive(imageArchive(n));
      const row = rows.get(imageRef(n));
      assert.ok(row, `${imageRef(n)} in:\n${ls}`);
      assert.equal(row[1], 'application/vnd.oci.image.manifest.v1+json');
      assert.equal(row[2], want.manifestDigest, n);
      assert.match(row.slice(3).join(' '), /linux\/amd64/);
    }
    // Nothing else was created (no import-<date> names, no digest-only leftovers).
    assert.deepEqual([...rows.keys()].sort(), IMAGE_NAMES.map((n) => imageRef(n)).sort());
    // Unpacked for this platform, content complete.
    const check = await must(['images', 'check']);
    for (const n of IMAGE_NAMES) assert.match(check, new RegExp(`^${imageRef(n).replace(/[.]/g, '\\.')}\\s+\\S+\\s+sha256:\\S+\\s+complete \\((\\d+)/\\1\\).*\\strue\\s*$`, 'm'), check);
  });

  test('containerd applies each config as the image says (entrypoint + cmd, user, env, workdir)', async () => {
    for (const [n, args, user] of [
      ['agnhost', ['/agnhost', 'pause'], 0],
      ['pause', ['/pause'], 65535],
      ['coredns', ['/coredns'], 0],
      ['busybox', ['sh'], 0],
      ['tortie', ['/usr/bin/tortie-node'], 0],
    ] as const) {
      const id = `spec-${n}-${randomSuffix()}`;
      await must(['containers', 'create', imageRef(n), id]);
      try {
        const info = JSON.parse(await must(['containers', 'info', id])) as { Spec: { process: { args: string[]; user: { uid: number }; env: string[]; cwd: string } } };
        assert.deepEqual(info.Spec.process.args, args, n);
        assert.equal(info.Spec.process.user.uid, user, n);
        assert.equal(info.Spec.process.cwd, '/');
        assert.ok(info.Spec.process.env.some((e) => e.startsWith('PATH=')));
      } finally {
        await must(['containers', 'delete', id]);
      }
    }
  });

  test("Tortie's image runs its binaries (tortie-node, ip, nft, BIRD answering birdc); its install-cni puts plugins on the host that run outside the image", async () => {
    const runIn = async (argv: string[], extra: string[] = []): Promise<string> => {
      const id = `tortie-run-${randomSuffix()}`;
      const r = await run(['run', '--rm', '--cgroup', `${cgroupParent}/${id}`, ...extra, imageRef('tortie'), id, ...argv], 120_000);
      assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}${r.stdout}`);
      return r.stdout + r.stderr;
    };
    const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version as string;
    assert.equal((await runIn(['/usr/bin/tortie-node', '-v'])).trim(), `v${version}`);
    assert.match(await runIn(['/usr/sbin/ip', '-V']), /^ip utility, iproute2-/m);
    assert.match(await runIn(['/usr/sbin/nft', '--version']), /^nftables v1\./m);
    assert.match(await runIn(['/usr/sbin/bird', '--version']), /^BIRD version 2\./m);
    // BIRD running in the image, asked by birdc over its control socket.
    const birdRun = await runIn(['/bin/sh', '-c',
      'printf "router id 10.0.0.1;\\nprotocol device {}\\n" > /tmp/b.conf && /usr/sbin/bird -c /tmp/b.conf -s /tmp/b.ctl -P /tmp/b.pid && ' +
      '/usr/sbin/birdc -s /tmp/b.ctl show status; kill "$(cat /tmp/b.pid)"']);
    assert.match(birdRun, /^BIRD 2\.\S+ ready\./m, birdRun);
    assert.match(birdRun, /^Router ID is 10\.0\.0\.1$/m, birdRun);
    // The agent's configuration checks, inside the image (a refused setting names the variable).
    const bad = await run(['run', '--rm', '--cgroup', `${cgroupParent}/bad-${randomSuffix()}`, '--env', 'FELIX_BPFENABLED=true', imageRef('tortie'), `tortie-bad-${randomSuffix()}`, '/usr/bin/tortie-node'], 60_000);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr + bad.stdout, /FELIX_BPFENABLED/);
    // tortie-install-cni in the image, the host's CNI directories mounted as the DaemonSet mounts them.
    const hostBin = join(node!.dir, `opt-cni-bin-${randomSuffix()}`);
    const hostNet = join(node!.dir, `etc-cni-net-${randomSuffix()}`);
    mkdirSync(hostBin);
    mkdirSync(hostNet);
    const out = await runIn(['/usr/bin/tortie-install-cni'], [
      '--env', 'SLEEP=false', '--env', 'KUBERNETES_NODE_NAME=worker01', '--env', 'CNI_MTU=1440',
      '--mount', `type=bind,src=${hostBin},dst=/host/opt/cni/bin,options=rbind:rw`,
      '--mount', `type=bind,src=${hostNet},dst=/host/etc/cni/net.d,options=rbind:rw`,
    ]);
    assert.match(out, /Done configuring CNI/);
    const conflist = JSON.parse(readFileSync(join(hostNet, '10-tortie.conflist'), 'utf8'));
    assert.equal(conflist.plugins[0].type, 'tortie');
    assert.equal(conflist.plugins[0].nodename, 'worker01');
    assert.equal(conflist.plugins[0].mtu, 1440);
    for (const plugin of ['tortie', 'tortie-ipam']) {
      const v = await node!.run([join(hostBin, plugin)], { timeoutMs: 30_000, env: { CNI_COMMAND: 'VERSION', PATH: '/nonexistent' }, input: '{"cniVersion":"1.0.0"}' });
      assert.equal(v.code, 0, `${plugin} on the host: ${v.stderr}`);
      assert.ok((JSON.parse(v.stdout) as { supportedVersions: string[] }).supportedVersions.includes('0.3.1'), v.stdout);
    }
    const pm = await node!.run([join(hostBin, 'portmap')], { timeoutMs: 30_000, env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.0.0"}' });
    assert.equal(pm.code, 0, pm.stderr);
  });

  test('pause holds a pod network namespace; agnhost serves in it as the Netpol suite runs it, CoreDNS answers DNS; packets from the node get answers', async () => {
    const sfx = randomSuffix();
    // The pod sandbox: pause as PID 1 of a container with a network namespace of its own.
    const pausePid = await startTask(imageRef('pause'), `pause-${sfx}`, []);
    const podNetns = `/proc/${pausePid}/ns/net`;
    const st = readFileSync(`/proc/${pausePid}/status`, 'utf8');
    assert.match(st, /^Uid:\s+65535\s/m, 'pause runs as 65535');
    assert.match(readFileSync(`/proc/${pausePid}/cmdline`, 'utf8'), /^\/pause\0/);
    // Wire it as a CNI would: a veth from the node's namespace into the pod's.
    const host = `vimg${sfx.slice(0, 6)}`;
    await node!.mustRun(['ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(pausePid)]);
    await node!.mustRun(['ip', 'addr', 'add', '10.250.0.1/30', 'dev', host]);
    await node!.mustRun(['ip', 'link', 'set', host, 'up']);
    const inPod = (argv: string[]) => node!.mustRun(['nsenter', `--net=${podNetns}`, ...argv]);
    await inPod(['ip', 'addr', 'add', '10.250.0.2/30', 'dev', 'eth0']);
    await inPod(['ip', 'link', 'set', 'eth0', 'up']);
    await inPod(['ip', 'link', 'set', 'lo', 'up']);

    // As netpol's model.go: a server container per port, /agnhost serve-hostname --tcp --http=false --port N.
    const server = `agn-srv-${sfx}`;
    await startTask(imageRef('agnhost'), server, ['--with-ns', `network:${podNetns}`], ['/agnhost', 'serve-hostname', '--tcp', '--http=false', '--port', '80']);
    // And netexec, the HTTP server many e2e tests use.
    const netexec = `agn-http-${sfx}`;
    await startTask(imageRef('agnhost'), netexec, ['--with-ns', `network:${podNetns}`], ['/agnhost', 'netexec', '--http-port=8080', '--udp-port=-1']);

    // From the node, over the veth: real TCP answers.
    const get = async (path: string): Promise<string> => {
      for (let i = 0; ; i++) {
        // Node's own HTTP client, run inside the node's network namespace (Debian's static busybox
        // wget crashes in its resolver code).
        const js = `fetch(process.argv[1], { signal: AbortSignal.timeout(5000) }).then(async (r) => { process.stdout.write(await r.text()); process.exit(r.ok ? 0 : 1); }, (e) => { console.error(String(e.cause ?? e)); process.exit(1); })`;
        const r = await node!.run([process.execPath, '-e', js, `http://10.250.0.2:8080${path}`], { timeoutMs: 15_000 });
        if (r.code === 0) return r.stdout;
        if (i > 100) throw new Error(`GET ${path}: ${r.code} ${r.stderr} ${r.stdout}; tasks:\n${(await run(['tasks', 'ls'])).stdout}\nnode: ${(await node!.run(['ip', 'addr'])).stdout}`);
        await sleep(100);
      }
    };
    assert.equal(await get('/echo?msg=tortie-images'), 'tortie-images');
    assert.match(await get('/clientip'), /^10\.250\.0\.1:\d+$/);
    let served = '';
    for (let i = 0; i < 100 && served === ''; i++) {
      const r = await node!.run(['busybox', 'nc', '-w', '3', '10.250.0.2', '80'], { timeoutMs: 10_000 });
      served = r.code === 0 ? r.stdout.trim() : '';
      if (!served) await sleep(100);
    }
    assert.ok(served.length > 0, 'serve-hostname answered over TCP with its hostname');

    // The Netpol probe, exactly: exec `/agnhost connect <ip:port> --timeout=1s --protocol=tcp` in a pod.
    const connect = (target: string) => run(['tasks', 'exec', '--exec-id', `c${randomSuffix()}`, netexec, '/agnhost', 'connect', target, '--timeout=1s', '--protocol=tcp'], 30_000);
    const ok = await connect('10.250.0.2:80');
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    const refused = await connect('10.250.0.2:81');
    assert.notEqual(refused.code, 0, 'nothing listens on 81: connect must fail');
    assert.match(refused.stderr + refused.stdout, /refused|REFUSED/);
    // The busybox base in agnhost's image: a shell and nc, as e2e tests exec them.
    const sh = await run(['tasks', 'exec', '--exec-id', `s${randomSuffix()}`, netexec, 'sh', '-c', 'command -v nc wget ip >/dev/null && echo shell-ok'], 30_000);
    assert.match(sh.stdout, /shell-ok/);

    // CoreDNS from its image, in the same pod, answering a real DNS query from the node.
    const corefileDir = join(node!.dir, `coredns-${sfx}`);
    mkdirSync(corefileDir, { recursive: true });
    writeFileSync(join(corefileDir, 'Corefile'), '.:53 {\n  errors\n  hosts {\n    10.250.7.7 tortie-images.test\n  }\n}\n');
    await startTask(imageRef('coredns'), `dns-${sfx}`, ['--with-ns', `network:${podNetns}`, '--mount', `type=bind,src=${corefileDir},dst=/etc/coredns,options=rbind:ro`], ['/coredns', '-conf', '/etc/coredns/Corefile']);
    const dnsJs = `const r = new (require('node:dns').promises.Resolver)({ timeout: 2000, tries: 1 }); r.setServers(['10.250.0.2']); r.resolve4(process.argv[1]).then((a) => { console.log(a.join(',')); }, (e) => { console.error(e.code ?? String(e)); process.exit(1); })`;
    let answer = '';
    for (let i = 0; i < 100 && answer === ''; i++) {
      const r = await node!.run([process.execPath, '-e', dnsJs, 'tortie-images.test'], { timeoutMs: 10_000 });
      answer = r.code === 0 ? r.stdout.trim() : '';
      if (!answer) await sleep(100);
    }
    assert.equal(answer, '10.250.7.7', 'CoreDNS answered the A query');

    // pause exits on SIGTERM (upstream pause.c: "Shutting down, got signal"), leaving the netns to nobody.
    await must(['tasks', 'kill', '--signal', 'SIGTERM', `pause-${sfx}`]);
    await waitStatus(`pause-${sfx}`, 'STOPPED');
  });
});

describe('the upstream e2e binary', { skip: missingE2eBinaries().length ? `needs e2e.test and ginkgo built by scripts/build-images.sh --only e2e: ${missingE2eBinaries().join(', ')} not built` : false, timeout: 300_000 }, () => {
  test('e2e.test lists the Netpol suite in a dry run; ginkgo reports its version', () => {
    const { e2eTest, ginkgo } = e2eBinaries();
    const dir = mkdtempSync(join(tmpdir(), 'tortie-e2e-dry-'));
    try {
      const r = spawnSync(e2eTest, ['--ginkgo.dry-run', '--ginkgo.focus=Netpol', '--ginkgo.v', '--provider=skeleton', `--report-dir=${dir}`, '--ginkgo.no-color'], { encoding: 'utf8', cwd: dir, timeout: 240_000, maxBuffer: 256 << 20 });
      const out = r.stdout + r.stderr;
      assert.equal(r.status, 0, out.slice(-3000));
      const m = /Ran (\d+) of (\d+) Specs/.exec(out);
      assert.ok(m, out.slice(-2000));
      assert.ok(Number(m[1]) >= 40, `Netpol specs: ${m[1]}`);
      assert.match(out, /\[sig-network\] Netpol NetworkPolicy between server and client should support a 'default-deny-ingress' policy/);
      const g = spawnSync(ginkgo, ['version'], { encoding: 'utf8' });
      assert.equal(g.status, 0);
      assert.match(g.stdout, /Ginkgo Version 2\.\d+\.\d+/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
