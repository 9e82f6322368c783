// Test driver: runs NAT-table and pod-wiring operations in the namespace it is started in (the tests
// start it with `ip netns exec <node-ns> /usr/bin/node nat-driver.js '<json>'`) and prints one JSON
// line. One NatTable lives for the whole request, so a sequence of applies sees its own history.
//
// Request: one op or an array of ops, each
//   {op: "apply", pools, force?} | {op: "read"} | {op: "remove"} | {op: "wire", spec} |
//   {op: "nft", args}   (a raw `nft` call, standing in for an administrator's hand edit)
// Answer: an array of {ok: true, value} | {ok: false, error: {name, message}}.

import { spawnExec } from '../iproute.js';
import { NatTable, NFT_BIN, type NatPool } from '../nat.js';
import { wirePod } from '../podnet.js';
import { runDriver } from './driver-main.js';

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

runDriver<Op>({ input: process.argv[2] ?? '', runOp });
