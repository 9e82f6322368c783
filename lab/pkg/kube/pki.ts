// The lab cluster's PKI, made with the openssl CLI (argument arrays, no shell): one CA that signs
// the apiserver's serving certificate and every client identity of a kubeadm/kubespray cluster
// (kubernetes.md §3.2–3.3), and the service-account signing key pair. ECDSA P-256 keys: RSA key
// generation would dominate `up` on two cores.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Identity {
  /** File stem: `<name>.crt`, `<name>.key`. */
  name: string;
  cn: string;
  /** Organisations (groups). */
  o: string[];
}

/** The client identities of the cluster; `system:node:<node>` per kubelet. */
export function clientIdentities(nodes: readonly string[]): Identity[] {
  return [
    { name: 'admin', cn: 'kubernetes-admin', o: ['system:masters'] },
    { name: 'apiserver-kubelet-client', cn: 'kube-apiserver', o: [] },
    { name: 'controller-manager', cn: 'system:kube-controller-manager', o: [] },
    { name: 'scheduler', cn: 'system:kube-scheduler', o: [] },
    { name: 'kube-proxy', cn: 'system:kube-proxy', o: [] },
    { name: 'tortie-node', cn: 'tortie-node', o: [] },
    ...nodes.map((n) => ({ name: `kubelet-${n}`, cn: `system:node:${n}`, o: ['system:nodes'] })),
  ];
}

export interface ClusterPKI {
  dir: string;
  ca: string;
  caKey: string;
  apiserver: string;
  apiserverKey: string;
  saKey: string;
  saPub: string;
  /** Certificate and key of a client identity by its `name`. */
  client(name: string): { cert: string; key: string };
}

function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd }, (err, _out, stderr) => {
      if (err) reject(new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${stderr || err.message}`));
      else resolve();
    });
  });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const DAYS = '3650';

function subject(cn: string, o: readonly string[]): string {
  for (const x of [cn, ...o]) if (/[/=,+\\]/.test(x)) throw new Error(`certificate subject part ${JSON.stringify(x)} holds a reserved character`);
  return o.map((g) => `/O=${g}`).join('') + `/CN=${cn}`;
}

async function issue(dir: string, name: string, subj: string, ext: string): Promise<void> {
  writeFileSync(join(dir, `${name}.ext`), ext);
  await openssl(['req', ...EC, '-keyout', `${name}.key`, '-subj', subj, '-out', `${name}.csr`], dir);
  await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', `0x${Date.now().toString(16)}${Math.floor(Math.random() * 1e6).toString(16)}`,
    '-days', DAYS, '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`], dir);
}

/**
 * Makes the CA, the apiserver's serving certificate (SANs `sanIPs` and the `kubernetes` Service
 * names), one client certificate per identity and the service-account key pair in `dir`.
 */
export async function makeClusterPKI(dir: string, opts: { nodes: readonly string[]; sanIPs: readonly string[]; sanDNS: readonly string[] }): Promise<ClusterPKI> {
  // Every subject checked before anything is made.
  const subjects = clientIdentities(opts.nodes).map((id) => ({ name: id.name, subj: subject(id.cn, id.o) }));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  await openssl(['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', DAYS, '-subj', '/CN=kubernetes',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature'], dir);
  const san = [...opts.sanIPs.map((ip) => `IP:${ip}`), ...opts.sanDNS.map((d) => `DNS:${d}`)].join(',');
  const jobs: Promise<void>[] = [
    issue(dir, 'apiserver', '/CN=kube-apiserver', `subjectAltName=${san}\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`),
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'sa.key'], dir).then(() =>
      openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir)),
  ];
  for (const id of subjects) {
    jobs.push(issue(dir, id.name, id.subj, 'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n'));
  }
  await Promise.all(jobs);
  return pkiAt(dir);
}

/** The PKI made earlier in `dir`. */
export function pkiAt(dir: string): ClusterPKI {
  const f = (n: string) => join(dir, n);
  return {
    dir,
    ca: f('ca.crt'),
    caKey: f('ca.key'),
    apiserver: f('apiserver.crt'),
    apiserverKey: f('apiserver.key'),
    saKey: f('sa.key'),
    saPub: f('sa.pub'),
    client: (name) => ({ cert: f(`${name}.crt`), key: f(`${name}.key`) }),
  };
}

/** A kubeconfig with the CA and the client's certificate and key inline (paths do not matter). */
export function kubeconfigFor(pki: ClusterPKI, identity: string, server: string, cluster = 'cluster.local'): string {
  const b64 = (p: string) => readFileSync(p).toString('base64');
  const { cert, key } = pki.client(identity);
  const user = identity;
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster, cluster: { server, 'certificate-authority-data': b64(pki.ca) } }],
    users: [{ name: user, user: { 'client-certificate-data': b64(cert), 'client-key-data': b64(key) } }],
    contexts: [{ name: `${user}@${cluster}`, context: { cluster, user } }],
    'current-context': `${user}@${cluster}`,
    preferences: {},
  }, null, 2) + '\n';
}
