// tortie-install-cni's pure part: its environment (Calico's names, refusals naming the variable), the
// template with Calico's placeholders (the manifest's own template among them), the kubeconfig, and
// the token schedule.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { load } from 'js-yaml';
import {
  DEFAULT_TEMPLATE,
  InstallConfigError,
  kubeconfigPath,
  kubeconfigToken,
  parseInstallEnv,
  refreshDelayMs,
  renderConflist,
  renderKubeconfig,
  serverURL,
  tokenExpiry,
  withToken,
} from './render.js';

const ROOT = new URL('../../../../', import.meta.url).pathname;
const host = () => 'Worker01';
const jwt = (claims: object) => `eyJhbGciOiJFUzI1NiJ9.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;

/** The cni_network_config of manifests/tortie.yaml's ConfigMap. */
function manifestTemplate(): string {
  const text = readFileSync(`${ROOT}manifests/tortie.yaml`, 'utf8');
  const cm = text.split(/^---$/m).map((d) => load(d) as Record<string, any> | null).find((d) => d?.kind === 'ConfigMap' && d.metadata?.name === 'tortie-config');
  assert.ok(cm, 'ConfigMap tortie-config in manifests/tortie.yaml');
  return cm.data.cni_network_config as string;
}

describe('parseInstallEnv', () => {
  it("Calico's defaults, and the node name from KUBERNETES_NODE_NAME else the lower-cased hostname", () => {
    const s = parseInstallEnv({}, { hostname: host });
    assert.equal(s.nodeName, 'worker01');
    assert.equal(s.confName, '10-tortie.conflist');
    assert.equal(s.cniNetDir, '/etc/cni/net.d');
    assert.equal(kubeconfigPath(s), '/etc/cni/net.d/tortie-kubeconfig');
    assert.equal(s.mtu, 1500);
    assert.equal(s.sleep, true);
    assert.equal(s.datastoreType, 'kubernetes');
    assert.equal(s.cniServiceAccount, 'tortie-cni-plugin');
    assert.equal(s.hostBinDir, '/host/opt/cni/bin');
    assert.equal(parseInstallEnv({ KUBERNETES_NODE_NAME: 'node-7' }, { hostname: host }).nodeName, 'node-7');
  });

  it('refuses bad values naming each variable and value, all at once', () => {
    assert.throws(
      () => parseInstallEnv({ CNI_MTU: 'big', SLEEP: 'maybe', CNI_CONF_NAME: '../x.conflist', KUBERNETES_NODE_NAME: 'Bad_Name', CNI_NET_DIR: 'rel/dir', KUBERNETES_SERVICE_PORT: '0' }, { hostname: host }),
      (e: unknown) => {
        assert.ok(e instanceof InstallConfigError);
        const m = (e as Error).message;
        for (const want of ['CNI_MTU="big"', 'SLEEP="maybe"', 'CNI_CONF_NAME="../x.conflist"', 'KUBERNETES_NODE_NAME="Bad_Name"', 'CNI_NET_DIR="rel/dir"', 'KUBERNETES_SERVICE_PORT="0"']) {
          assert.ok(m.includes(want), `${want} in ${m}`);
        }
        assert.equal((e as InstallConfigError).problems.length, 6);
        return true;
      },
    );
    assert.throws(() => parseInstallEnv({ LOG_FILE_PATH: '/var/log/"x"/cni.log' }, { hostname: host }), /LOG_FILE_PATH=.*quote, backslash/);
    assert.throws(() => parseInstallEnv({ CNI_MTU: '40' }, { hostname: host }), /CNI_MTU="40": must be 0 \(auto\) or at least 68/);
    assert.throws(() => parseInstallEnv({ SKIP_CNI_BINARIES: 'tortie,calico' }, { hostname: host }), /"calico" is not one of the image's plugins/);
  });
});

describe('renderConflist', () => {
  const s = parseInstallEnv({ KUBERNETES_NODE_NAME: 'worker01', CNI_MTU: '0', KUBERNETES_SERVICE_HOST: '10.233.0.1', KUBERNETES_SERVICE_PORT: '443' }, { hostname: host });

  it("renders the manifest's template as the seed's 10-calico.conflist, Tortie-typed", () => {
    const doc = JSON.parse(renderConflist(manifestTemplate(), s, 'tok'));
    assert.equal(doc.name, 'k8s-pod-network');
    assert.equal(doc.cniVersion, '0.3.1');
    assert.deepEqual(doc.plugins.map((p: { type: string }) => p.type), ['tortie', 'portmap', 'bandwidth']);
    const t = doc.plugins[0];
    assert.equal(t.nodename, 'worker01');
    assert.equal(t.mtu, 0);
    assert.equal(t.datastore_type, 'kubernetes');
    assert.deepEqual(t.ipam, { type: 'tortie-ipam' });
    assert.deepEqual(t.policy, { type: 'k8s' });
    assert.equal(t.kubernetes.kubeconfig, '/etc/cni/net.d/tortie-kubeconfig');
    assert.deepEqual(doc.plugins[1].capabilities, { portMappings: true });
  });

  it('the built-in template when the ConfigMap gives none', () => {
    const doc = JSON.parse(renderConflist(DEFAULT_TEMPLATE, s, 'tok'));
    assert.equal(doc.plugins[0].type, 'tortie');
    assert.equal(doc.plugins[0].log_file_path, '/var/log/tortie/cni/cni.log');
  });

  it('refuses an unknown placeholder, invalid JSON, a conflist without plugins', () => {
    assert.throws(() => renderConflist('{"name":"n","plugins":[{"type":"tortie","mtu":__CNI_MTUU__}]}', s, 't'), /unknown placeholder\(s\) __CNI_MTUU__/);
    assert.throws(() => renderConflist('{"name":"n","plugins":[{"type":"tortie",}]}', s, 't', 'CNI_NETWORK_CONFIG'), /CNI_NETWORK_CONFIG: the rendered network configuration is not valid JSON/);
    assert.throws(() => renderConflist('{"name":"n","type":"tortie"}', s, 't'), /is a \.conflist but the configuration has no "plugins" list/);
    assert.throws(() => renderConflist('{"name":"n","plugins":[{"mtu":1}]}', s, 't'), /plugins\[0\] has no "type"/);
  });
});

describe('the CNI kubeconfig and its token', () => {
  it('names the API server (brackets for IPv6 only), the CA, the token', () => {
    assert.equal(serverURL({ serviceHost: '10.233.0.1', servicePort: '443', serviceProtocol: 'https' }), 'https://10.233.0.1:443');
    assert.equal(serverURL({ serviceHost: 'fd00::1', servicePort: '6443', serviceProtocol: 'https' }), 'https://[fd00::1]:6443');
    assert.equal(serverURL({ serviceProtocol: 'https' }), undefined);
    const k = load(renderKubeconfig({ server: 'https://10.233.0.1:443', caData: 'Q0E=', token: 'abc.def.ghi' })) as Record<string, any>;
    assert.equal(k['current-context'], 'tortie-context');
    assert.equal(k.clusters[0].cluster.server, 'https://10.233.0.1:443');
    assert.equal(k.clusters[0].cluster['certificate-authority-data'], 'Q0E=');
    assert.equal(k.users[0].user.token, 'abc.def.ghi');
    const insecure = load(renderKubeconfig({ server: 'https://h:1', skipTLSVerify: true, token: 't' })) as Record<string, any>;
    assert.equal(insecure.clusters[0].cluster['insecure-skip-tls-verify'], true);
    assert.throws(() => renderKubeconfig({ server: 'https://h:1', token: '' }), /token: empty/);
  });

  it('reads and replaces the token, keeping the rest; reads a JWT expiry', () => {
    const text = renderKubeconfig({ server: 'https://h:1', caData: 'Q0E=', token: 'old' });
    assert.equal(kubeconfigToken(text), 'old');
    const next = withToken(text, 'new.token.x');
    assert.equal(kubeconfigToken(next), 'new.token.x');
    assert.equal(next.replace('new.token.x', 'old'), text);
    assert.equal(tokenExpiry(jwt({ exp: 1234, sub: 'x' })), 1234);
    assert.equal(tokenExpiry('not-a-jwt'), undefined);
  });

  it("schedules the refresh a quarter into the remaining life plus up to as much jitter (Calico's), ≥ 5 s", () => {
    const now = 1_000_000_000_000;
    const exp = now / 1000 + 24 * 3600;
    assert.equal(refreshDelayMs(exp, now, () => 0), 6 * 3600 * 1000);
    assert.equal(refreshDelayMs(exp, now, () => 1), 12 * 3600 * 1000);
    assert.equal(refreshDelayMs(now / 1000 - 10, now, () => 0.5), 5000, 'already expired → soon');
  });
});
