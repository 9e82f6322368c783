// Child process for the multi-process datastore tests. Usage:
//   node backend-contract-worker.js '<OpenSpec JSON>' <mode> [args...]
// It opens the store the same way the parent does (module + export + JSON arguments) and reports
// on stdout, one line per fact, so the parent can tell what was acknowledged.
import { createInterface } from 'node:readline';
import { AlreadyExistsError, ConflictError, type Backend } from '../libcalico-go/lib/backend/api.js';

export interface OpenSpec {
  /** URL of the module exporting the factory. */
  module: string;
  exportName: string;
  args: unknown[];
}

async function open(spec: OpenSpec): Promise<Backend> {
  const mod = (await import(spec.module)) as Record<string, (...a: unknown[]) => Backend | Promise<Backend>>;
  return mod[spec.exportName](...spec.args);
}

/** Resolves when the parent writes a line ("go") on stdin. */
function waitForGo(): Promise<void> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin });
    rl.once('line', () => {
      rl.close();
      process.stdin.destroy(); // an open stdin would keep this process alive
      resolve();
    });
  });
}

/** n read-modify-write increments of a counter, retrying on conflicts. */
async function cas(b: Backend, key: string, n: number): Promise<void> {
  let conflicts = 0;
  for (let i = 0; i < n; ) {
    const cur = await b.get(key);
    try {
      if (cur === null) await b.create(key, '1');
      else await b.update(key, String(Number(cur.value) + 1), cur.revision);
      i++;
    } catch (e) {
      if (e instanceof ConflictError || e instanceof AlreadyExistsError) conflicts++;
      else throw e;
    }
  }
  console.log(JSON.stringify({ done: n, conflicts }));
}

async function main(): Promise<void> {
  const [specJson, mode, ...args] = process.argv.slice(2);
  const b = await open(JSON.parse(specJson) as OpenSpec);
  switch (mode) {
    case 'cas':
      console.log('ready');
      await waitForGo();
      await cas(b, args[0], Number(args[1]));
      break;
    case 'create': {
      console.log('ready');
      await waitForGo();
      try {
        await b.create(args[0], args[1]);
        console.log('won');
      } catch (e) {
        console.log(e instanceof AlreadyExistsError ? 'lost' : `error ${(e as Error).message}`);
      }
      break;
    }
    case 'apply':
      // apply <prefix> <count>: keys prefix0..prefix<count-1> with values v0.. in order.
      for (let i = 0; i < Number(args[1]); i++) await b.apply(`${args[0]}${i}`, `v${i}`);
      console.log('done');
      break;
    case 'writeloop':
      // Writes until killed; "acked N" is printed only after write N committed.
      for (let i = 0; ; i++) {
        await b.apply(`${args[0]}${String(i).padStart(8, '0')}`, `value-${i}`);
        process.stdout.write(`acked ${i}\n`);
      }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
  await b.close();
}

main().catch((e) => {
  console.error(`worker: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
