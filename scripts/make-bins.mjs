// Writes the executables in bin/. Each is a two-line launcher whose shebang is the absolute path of
// the Node that built it, so CNI runtimes (which pass their own, often empty, PATH) can exec it.
// Every target is a file of the product build (tsconfig.build.json), never a test, testing/, bench/
// or testdata/ file (refused here).
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { classify } from './check-imports.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bins = {
  tortie: { target: 'dist/cni-plugin/cmd/tortie.js', cni: true },
  'tortie-ipam': { target: 'dist/cni-plugin/cmd/tortie-ipam.js', cni: true },
  // The DaemonSet's init container (Calico's `install`): plugins, CNI kubeconfig, conflist.
  'tortie-install-cni': { target: 'dist/cni-plugin/cmd/install.js' },
  // A long-running agent: small young-generation semi-spaces keep its resident memory down.
  'tortie-node': { target: 'dist/node/cmd/tortie-node.js', nodeFlags: '--max-semi-space-size=1' },
  // The cluster's controllers (IPAM garbage collection): one long-running process per cluster.
  'tortie-kube-controllers': { target: 'dist/kube-controllers/cmd/tortie-kube-controllers.js', nodeFlags: '--max-semi-space-size=1' },
  tortiectl: { target: 'dist/calicoctl/cmd/tortiectl.js' },
  'tortie-lab': { target: 'dist/lab/cmd/tortie-lab.js' },
};
// CNI plugins start once per pod operation: NODE_EXTRA_CA_CERTS (set on many hosts) makes Node
// parse a CA bundle at every start (~30 ms here) that a plugin never uses (etcd CAs are explicit).
const ENV = '/usr/bin/env';
mkdirSync(join(root, 'bin'), { recursive: true });
// Version and commit for `tortiectl version`.
let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short=10', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
} catch {
  // not a git checkout
}
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
writeFileSync(join(root, 'dist/build-info.json'), JSON.stringify({ version: `v${version}`, commit }) + '\n');
for (const [name, { target, cni, nodeFlags }] of Object.entries(bins)) {
  const source = target.replace(/^dist\//, '').replace(/\.js$/, '.ts');
  if (classify(source).kind !== 'product') throw new Error(`bin/${name}: ${target} is not a product file (${classify(source).kind})`);
  if (!existsSync(join(root, target))) throw new Error(`bin/${name}: ${target} was not built (npm run build)`);
  const path = join(root, 'bin', name);
  const shebang = cni
    ? `#!${ENV} -S -u NODE_EXTRA_CA_CERTS ${process.execPath}`
    : `#!${process.execPath}${nodeFlags ? ` ${nodeFlags}` : ''}`;
  writeFileSync(path, `${shebang}\nimport(${JSON.stringify('../' + target)});\n`);
  chmodSync(path, 0o755);
}
