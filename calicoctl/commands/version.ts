// `tortiectl version`: this client's version and build, and the cluster's from ClusterInformation.
import { readFileSync } from 'node:fs';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { ResourceClient } from '../../libcalico-go/lib/clientv3/resources.js';
import { renderVersion } from '../printers/version.js';
import { type ParsedArgs, flagBool } from './args.js';
import type { Io } from './resources.js';

function buildInfo(): { version: string; commit: string } {
  try {
    return JSON.parse(readFileSync(new URL('../../build-info.json', import.meta.url), 'utf8'));
  } catch {
    return { version: 'v0.1.0', commit: 'unknown' };
  }
}

export const TORTIE_VERSION = buildInfo().version;

export async function cmdVersion(connect: () => Promise<Backend>, p: ParsedArgs, io: Io): Promise<void> {
  const info = buildInfo();
  const base = { clientVersion: info.version, gitCommit: info.commit };
  if (flagBool(p, 'client')) return io.out(renderVersion({ ...base, clientOnly: true }));
  let store: Backend;
  try {
    store = await connect();
  } catch {
    return io.out(renderVersion({ ...base, cluster: null }));
  }
  try {
    const ci = await new ResourceClient(store).get('ClusterInformation', 'default');
    const spec = (ci?.spec ?? {}) as { calicoVersion?: string; clusterType?: string };
    io.out(renderVersion({ ...base, cluster: { calicoVersion: spec.calicoVersion, clusterType: spec.clusterType } }));
  } finally {
    await store.close();
  }
}
