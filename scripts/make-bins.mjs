// Writes the executables in bin/. Each is a two-line launcher whose shebang is the absolute path of
// the Node that built it, so CNI runtimes (which pass their own, often empty, PATH) can exec it.
import { mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bins = {
  'tortie-ipam': 'dist/cni-plugin/cmd/tortie-ipam.js',
  tortiectl: 'dist/calicoctl/cmd/tortiectl.js',
};
mkdirSync(join(root, 'bin'), { recursive: true });
for (const [name, target] of Object.entries(bins)) {
  const path = join(root, 'bin', name);
  writeFileSync(path, `#!${process.execPath}\nimport(${JSON.stringify('../' + target)});\n`);
  chmodSync(path, 0o755);
}
