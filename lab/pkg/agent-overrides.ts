// Extra environment for one node's tortie-node, set by `tortie-lab break` (faults.ts) and read
// when the lab starts that agent: `<lab dir>/nodes/<node>/agent-env.json`.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const file = (nodeDir: string) => join(nodeDir, 'agent-env.json');

export function readAgentOverrides(nodeDir: string): Record<string, string> {
  if (!existsSync(file(nodeDir))) return {};
  return JSON.parse(readFileSync(file(nodeDir), 'utf8')) as Record<string, string>;
}

export function writeAgentOverrides(nodeDir: string, env: Record<string, string>): void {
  if (Object.keys(env).length === 0) rmSync(file(nodeDir), { force: true });
  else writeFileSync(file(nodeDir), JSON.stringify(env, null, 2) + '\n');
}
