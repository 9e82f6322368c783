// BGP passwords from files, laid out as mounted Kubernetes Secrets are: `<dir>/<secret name>/<key>`
// holds the value of `key` in Secret `secret name` (BGPPeer `password.secretKeyRef`, default
// BGPConfiguration `nodeMeshPassword.secretKeyRef`). tortie-node gets the directory from
// TORTIE_BGP_SECRETS_DIR (node/pkg/config.ts).
//
// The files are read on every use (each routing pass), so a rotated Secret is picked up without a
// restart. A file's content is the password exactly as stored (no trimming: a trailing newline is
// part of it, as it would be for Calico, and the model refuses it as a control character). A
// missing file or directory means "not found" (undefined); anything else that stops the read (a
// name that is not a Secret name, a permission problem) throws, and the model leaves that peer
// out with the reason.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SecretResolver {
  /** The value of `key` in Secret `name`; undefined when the Secret or the key does not exist. */
  (name: string, key: string): string | undefined;
  /** Where the value was looked for, for messages. */
  where?: (name: string, key: string) => string;
}

/** A Kubernetes Secret name: a DNS subdomain. */
const SECRET_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A Secret data key. */
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

export const SECRETS_DIR_VARIABLE = 'TORTIE_BGP_SECRETS_DIR';

/** Reads secrets below `dir`; with `dir` undefined nothing resolves and messages say why. */
export function fileSecretResolver(dir: string | undefined): SecretResolver {
  if (dir === undefined) {
    const none: SecretResolver = () => undefined;
    none.where = () => `${SECRETS_DIR_VARIABLE} is not set, so tortie-node has no secrets to read`;
    return none;
  }
  const path = (name: string, key: string) => join(dir, name, key);
  const resolve: SecretResolver = (name, key) => {
    if (name.length > 253 || !SECRET_NAME.test(name)) throw new Error(`${JSON.stringify(name)} is not a Kubernetes Secret name`);
    if (key === '.' || key === '..' || key.length > 253 || !SECRET_KEY.test(key)) {
      throw new Error(`${JSON.stringify(key)} is not a Kubernetes Secret key`);
    }
    try {
      return readFileSync(path(name, key), 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw new Error(`cannot read ${path(name, key)}: ${code ?? (e as Error).message}`);
    }
  };
  resolve.where = (name, key) => `no file ${path(name, key)} (${SECRETS_DIR_VARIABLE}=${dir})`;
  return resolve;
}
