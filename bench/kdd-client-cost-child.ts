// One short-lived process, as tortie-ipam is on every CNI call: open the configured datastore, read
// one key, close; prints the phases in ms as JSON. Used by bench/kdd-client-cost.ts.
import { performance } from 'node:perf_hooks';

const [kind, arg] = process.argv.slice(2);
const t0 = performance.now();
const { openBackend } = await import('../libcalico-go/lib/config/open-backend.js');
const tImported = performance.now();
const tClient = tImported;
if (kind === 'full-client-node') {
  // For comparison: what importing client-node's index (KubeConfig and the generated API) costs.
  await import('@kubernetes/client-node');
  console.log(JSON.stringify({ importClientNode: performance.now() - tImported }));
  process.exit(0);
}
const b = await openBackend(
  kind === 'kubernetes'
    ? { datastoreType: 'kubernetes', datastorePath: '', etcdEndpoints: [], kubeconfig: arg }
    : { datastoreType: 'embedded', datastorePath: arg, etcdEndpoints: [] },
);
const tOpen = performance.now();
await b.get('/calico/resources/v3/projectcalico.org/ippools/default-pool');
const tFirst = performance.now();
await b.get('/calico/resources/v3/projectcalico.org/ippools/default-pool');
const tSecond = performance.now();
await b.close();
console.log(JSON.stringify({
  startup: t0, // process start → this module running (Node itself)
  importBackendCode: tImported - t0,
  importClientNode: tClient - tImported,
  open: tOpen - tClient,
  firstRequest: tFirst - tOpen,
  secondRequest: tSecond - tFirst,
  total: tSecond - 0,
}));
