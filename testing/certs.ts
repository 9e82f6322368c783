// Throwaway PKI for TLS tests: a CA, a server certificate for 127.0.0.1/localhost and a client
// certificate, made with the openssl CLI into a directory the caller owns and removes.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestPKI {
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args[0]} failed: ${err.stderr?.toString() || err.message}`);
  }
}

/** Key + certificate signed by the CA in `dir` (`<prefix>ca.pem`); extensions from `ext`. */
function issue(dir: string, name: string, cn: string, ext: string, caPrefix: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}-key.pem`, '-subj', `/CN=${cn}`,
    '-out', `${name}.csr`], dir);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${caPrefix}ca.pem`, '-CAkey', `${caPrefix}ca-key.pem`,
    '-CAcreateserial', '-days', '2', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`], dir);
}

/**
 * Creates `<prefix>ca.pem`, `<prefix>server.pem`, `<prefix>client.pem` (+ `-key.pem`) in `dir`.
 * Different prefixes give independent CAs (for "wrong CA" tests).
 */
export function makeTestPKI(dir: string, prefix = ''): TestPKI {
  // P-256 keys: generating RSA keys would dominate the TLS tests' run time.
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${prefix}ca-key.pem`,
    '-out', `${prefix}ca.pem`, '-days', '2', '-subj', `/CN=tortie-test-ca-${prefix || 'main'}`], dir);
  issue(dir, `${prefix}server`, 'localhost',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n', prefix);
  issue(dir, `${prefix}client`, 'tortie-test-client', 'extendedKeyUsage=clientAuth\n', prefix);
  const f = (n: string) => join(dir, `${prefix}${n}`);
  return {
    caFile: f('ca.pem'),
    serverCertFile: f('server.pem'),
    serverKeyFile: f('server-key.pem'),
    clientCertFile: f('client.pem'),
    clientKeyFile: f('client-key.pem'),
  };
}
