// Helper run where the lab's datastore is reachable (inside the etcd namespace for etcd labs):
//   node fault-ipam.js assign HANDLE NODE   → allocates one address for HANDLE on NODE, prints it
//   node fault-ipam.js release HANDLE       → releases HANDLE's addresses, prints them
// The datastore comes from DATASTORE_TYPE / DATASTORE_PATH / ETCD_ENDPOINTS.
import { openBackend } from '../../libcalico-go/lib/config/open-backend.js';
import { resolveDatastoreConfig, settingsFromEnv } from '../../libcalico-go/lib/config/datastore-config.js';
import { IPAM } from '../../libcalico-go/lib/ipam/ipam.js';

const [verb, handle, node] = process.argv.slice(2);
const store = await openBackend(resolveDatastoreConfig(settingsFromEnv(process.env)));
try {
  const ipam = new IPAM(store, { selects: () => true });
  if (verb === 'assign' && handle && node) {
    const r = await ipam.autoAssign({ handleId: handle, attrs: { node }, hostname: node, num4: 1, num6: 0 });
    process.stdout.write(`${r.ipv4.map((a) => a.ip).join(' ')}\n`);
  } else if (verb === 'release' && handle) {
    process.stdout.write(`${(await ipam.releaseByHandle(handle)).join(' ')}\n`);
  } else {
    process.stderr.write('usage: fault-ipam.js assign HANDLE NODE | release HANDLE\n');
    process.exitCode = 2;
  }
} finally {
  await store.close();
}
