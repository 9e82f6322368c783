// Connects tortiectl to the datastore: `-c FILE` (a CalicoAPIConfig), else the default config
// file when it exists, else the environment — calicoctl's order.
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import {
  type DatastoreConfig,
  resolveDatastoreConfig,
  settingsFromAPIConfig,
  settingsFromEnv,
} from '../../libcalico-go/lib/config/datastore-config.js';
import { openBackend } from '../../libcalico-go/lib/config/open-backend.js';

export const DEFAULT_CONFIG_FILE = '/etc/tortie/tortiectl.cfg';

export function loadDatastoreConfig(configFile: string | undefined, env: Record<string, string | undefined>): DatastoreConfig {
  const file = configFile ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  if (file === undefined) return resolveDatastoreConfig(settingsFromEnv(env));
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new Error(`config file ${file} is not valid YAML: ${(e as Error).message}`);
  }
  return resolveDatastoreConfig(settingsFromAPIConfig(doc, file));
}

export async function connect(configFile: string | undefined, env: Record<string, string | undefined>): Promise<Backend> {
  return openBackend(loadDatastoreConfig(configFile, env));
}
