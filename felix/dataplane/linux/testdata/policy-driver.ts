// Test driver: runs policy-table and pod-wiring operations in the namespace it is started in (the
// tests start it with `ip netns exec <node-ns> /usr/bin/node policy-driver.js` and write the request
// on stdin) and prints one JSON line. One PolicyTable lives for the whole request, so a sequence of
// applies sees its own history.
//
// Request: one op or an array of ops, each
//   {op: "apply", model, local, endpointToHostAction?, force?, verify?} | {op: "verify"} | {op: "remove"} |
//   {op: "wire", spec} | {op: "nft", args, input?}   (a raw `nft` call, standing in for an
//   administrator's hand edit; `input` is its stdin, e.g. for `-f -`)
// Answer: an array of {ok: true, value} | {ok: false, error: {name, message}}.

import { readFileSync } from 'node:fs';
import { spawnExec } from '../iproute.js';
import { NFT_BIN, PolicyTable } from '../policy-table.js';
import { wirePod } from '../podnet.js';
import type { PolicyModel } from '../../../../libcalico-go/lib/policy/model.js';
import type { EndpointToHostAction, LocalEndpoint } from '../../../calc/policy-compiler.js';
import { runDriver } from './driver-main.js';

type Op = { op: string; [k: string]: unknown };

const exec = spawnExec();
const table = new PolicyTable({ exec });

async function runOp(o: Op): Promise<unknown> {
  switch (o.op) {
    case 'apply':
      return table.apply(o.model as PolicyModel, o.local as LocalEndpoint[], {
        force: o.force === true,
        verify: o.verify === true,
        endpointToHostAction: o.endpointToHostAction as EndpointToHostAction | undefined,
      });
    case 'verify':
      return table.verify();
    case 'remove':
      return table.remove();
    case 'wire':
      return wirePod(o.spec as Parameters<typeof wirePod>[0]);
    case 'nft': {
      const r = await exec(NFT_BIN, (o.args as string[]).map(String), typeof o.input === 'string' ? o.input : undefined);
      if (r.code !== 0) throw new Error(`nft ${(o.args as string[]).join(' ')}: ${r.stderr.trim()}`);
      return r.stdout;
    }
    default:
      throw new Error(`unknown op ${o.op}`);
  }
}

runDriver<Op>({ input: readFileSync(0, 'utf8'), runOp });
