// Entry point of tortie-install-cni, the DaemonSet's init container (Calico's `install`): copies the
// CNI plugins to the host's CNI bin dir (with the Node runtime they need, cni-plugin/pkg/install/
// binaries.ts), writes the CNI kubeconfig (mode 0600) with a TokenRequest token of ServiceAccount
// tortie-cni-plugin, and renders the network configuration template into `<CNI_CONF_NAME>`.
//
// Order: everything is read and checked first (environment, template, token); only then is anything
// written, each file atomically (temporary file + rename), the conflist last — its appearance tells
// the kubelet that the node's network is configured. A bad setting exits 1 naming the variable, with
// nothing written.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { loadKubeClient } from '../../libcalico-go/lib/backend/kubernetes/client.js';
import { installPlugins } from '../pkg/install/binaries.js';
import { DEFAULT_TEMPLATE, InstallConfigError, KUBECONFIG_NAME, parseInstallEnv, renderConflist, renderKubeconfig, serverURL } from '../pkg/install/render.js';
import { type IssuedToken, requestToken, writeFileAtomic } from '../pkg/install/token.js';

const log = (m: string) => process.stderr.write(`${new Date().toISOString()} [INFO][install-cni] ${m}\n`);
const warn = (m: string) => process.stderr.write(`${new Date().toISOString()} [WARNING][install-cni] ${m}\n`);

async function main(): Promise<void> {
  const s = parseInstallEnv(process.env, { hostname });
  let template = DEFAULT_TEMPLATE;
  let source = 'the built-in network configuration';
  if (s.networkConfigFile !== undefined) {
    try {
      template = readFileSync(s.networkConfigFile, 'utf8');
    } catch (e) {
      throw new InstallConfigError([`CNI_NETWORK_CONFIG_FILE=${JSON.stringify(s.networkConfigFile)}: cannot read it: ${(e as Error).message}`]);
    }
    source = `CNI_NETWORK_CONFIG_FILE ${s.networkConfigFile}`;
  } else if (s.networkConfig !== undefined) {
    template = s.networkConfig;
    source = 'CNI_NETWORK_CONFIG';
  }

  // The CNI kubeconfig: in a pod with the Kubernetes datastore.
  const saToken = join(s.serviceAccountDir, 'token');
  let kubeconfig: string | undefined;
  let token = '';
  if (s.datastoreType === 'kubernetes' && existsSync(saToken)) {
    const server = serverURL(s);
    if (!server) throw new InstallConfigError(['KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT: unset, so the CNI kubeconfig has no API server to name']);
    const namespace = readFileSync(join(s.serviceAccountDir, 'namespace'), 'utf8').trim();
    const client = await loadKubeClient({ env: process.env, serviceAccountDir: s.serviceAccountDir });
    let issued: IssuedToken;
    try {
      issued = await requestToken(client, namespace, s.cniServiceAccount);
      log(`Created a token for ServiceAccount ${namespace}/${s.cniServiceAccount}, valid until ${new Date(issued.exp * 1000).toISOString()}`);
    } catch (e) {
      await client.close();
      throw new Error(`Unable to create a token for the CNI kubeconfig (TokenRequest for ServiceAccount ${namespace}/${s.cniServiceAccount}): ${(e as Error).message}`);
    }
    await client.close();
    token = issued.token;
    let caData: string | undefined;
    try {
      caData = readFileSync(join(s.serviceAccountDir, 'ca.crt')).toString('base64');
    } catch {
      caData = undefined;
    }
    kubeconfig = renderKubeconfig({ server, caData, skipTLSVerify: s.skipTLSVerify, token });
  } else if (s.datastoreType === 'kubernetes') {
    warn(`no service-account token at ${saToken}: not running in a pod; the CNI kubeconfig is not written`);
  }
  const conflist = renderConflist(template, s, token, source);

  // Everything is known and valid: write.
  for (const d of [s.hostBinDir, s.hostNetDir]) {
    if (!existsSync(d)) throw new Error(`${d} does not exist: mount the host's directory there`);
  }
  if (s.updateBinaries) {
    const r = installPlugins(s.appDir, s.hostBinDir, s.skipBinaries, s.imageBinDir);
    log(`${r.copied ? 'Installed' : 'Kept the installed'} runtime bundle ${r.bundle}; plugins: ${r.launchers.join(', ') || 'none'}`);
  } else {
    log('UPDATE_CNI_BINARIES=false: the CNI binaries are left as they are');
  }
  if (kubeconfig !== undefined) {
    writeFileAtomic(join(s.hostNetDir, KUBECONFIG_NAME), kubeconfig, 0o600);
    log(`Wrote the CNI kubeconfig ${join(s.hostNetDir, KUBECONFIG_NAME)} (mode 0600)`);
  }
  writeFileAtomic(join(s.hostNetDir, s.confName), conflist, 0o644);
  if (s.oldConfName !== s.confName) rmSync(join(s.hostNetDir, s.oldConfName), { force: true });
  log(`Wrote the CNI configuration ${join(s.hostNetDir, s.confName)}:`);
  process.stdout.write(conflist);
  log('Done configuring CNI');
  if (s.sleep) {
    log('SLEEP=true: sleeping (set SLEEP=false to exit after installing)');
    setInterval(() => undefined, 1 << 30);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`tortie-install-cni: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
