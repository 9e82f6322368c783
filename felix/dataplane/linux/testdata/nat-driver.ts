// Test driver: runs NAT-table and pod-wiring operations in the namespace it is started in (the tests
// start it with `ip netns exec <node-ns> /usr/bin/node nat-driver.js '<json>'`) and prints one JSON
// line. One NatTable lives for the whole request, so a sequence of applies sees its own history.
//
// Request: one op or an array of ops, each
//   {op: "apply", pools, force?} | {op: "read"} | {op: "remove"} | {op: "wire", spec} |
//   {op: "nft", args}   (a raw `nft` call, standing in for an administrator's hand edit)
// Answer: an array of {ok: true, value} | {ok: false, error: {name, message}}.

import { writeSync } from 'node:fs';
import { spawnExec } from '../iproute.js';
import { NatTable, NFT_BIN, type NatPool } from '../nat.js';
import { wirePod } from '../podnet.js';

type Op = { op: string; [k: string]: unknown };

const exec = spawnExec();
const nat = new NatTable({ exec });

async function runOp(o: Op): Promise<unknown> {
  switch (o.op) {
    case 'apply':
      return nat.apply(o.pools as NatPool[], { force: o.force === true });
    case 'read':
      return nat.read();
    case 'remove':
      return nat.remove();
    case 'wire':
      return wirePod(o.spec as Parameters<typeof wirePod>[0]);
    case 'nft': {
      const r = await exec(NFT_BIN, (o.args as string[]).map(String));
      if (r.code !== 0) throw new Error(`nft ${(o.args as string[]).join(' ')}: ${r.stderr.trim()}`);
      return r.stdout;
    }
    default:
      throw new Error(`unknown op ${o.op}`);
  }
}

async function main(): Promise<void> {
  const req = JSON.parse(process.argv[2] ?? '[]') as Op | Op[];
  const ops = Array.isArray(req) ? req : [req];
  const out: unknown[] = [];
  for (const o of ops) {
    try {
      out.push({ ok: true, value: await runOp(o) });
    } catch (e) {
      const err = e as Error;
      out.push({ ok: false, error: { name: err.name, message: err.message } });
    }
  }
  writeSync(1, JSON.stringify(out) + '\n');
}

main().catch((e: unknown) => {
  writeSync(2, `${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 1;
});
