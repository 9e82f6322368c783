// Writes the executables in bin/. Each is a two-line launcher whose shebang is the absolute path of
// the Node that built it, so CNI runtimes (which pass their own, often empty, PATH) can exec it.
import { mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bins = {
  'tortie-ipam': 'dist/cni-plugin/cmd/tortie-ipam.js',
  tortiectl: 'dist/calicoctl/cmd/tortiectl.js',
};
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
for (const [name, target] of Object.entries(bins)) {
  const path = join(root, 'bin', name);
  writeFileSync(path, `#!${process.execPath}\nimport(${JSON.stringify('../' + target)});\n`);
  chmodSync(path, 0o755);
}
