// Entry point of bin/tortie-kube-controllers:
//   tortie-kube-controllers                      run the controllers (ENABLED_CONTROLLERS, default node)
//   tortie-kube-controllers check-status -l|-r   liveness / readiness from the status file (exit 0 or 1),
//                                                as calico-kube-controllers' /usr/bin/check-status
//
// check-status loads only the status file's reader: it is the pod's probe, run every 10 s, and the
// controllers' module graph (datastore clients) is loaded only to run them.
import { DEFAULT_STATUS_FILE } from '../pkg/config.js';
import { checkLiveness, checkReadiness } from '../pkg/status.js';

const USAGE = 'usage: tortie-kube-controllers [check-status (-l | -r) [-f <status file>]]\n';

function checkStatus(args: string[]): number {
  let mode: 'l' | 'r' | undefined;
  let file = process.env.STATUS_FILE || DEFAULT_STATUS_FILE;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-l' || a === '-r') mode = a === '-l' ? 'l' : 'r';
    else if (a === '-f' && i + 1 < args.length) file = args[++i]!;
    else {
      process.stderr.write(`check-status: unknown argument ${JSON.stringify(a)}\n${USAGE}`);
      return 2;
    }
  }
  if (!mode) {
    process.stderr.write(`check-status: give -l (liveness) or -r (readiness)\n${USAGE}`);
    return 2;
  }
  const r = mode === 'l' ? checkLiveness(file) : checkReadiness(file);
  (r.ok ? process.stdout : process.stderr).write(`${r.message}\n`);
  return r.ok ? 0 : 1;
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'check-status') {
    process.exitCode = checkStatus(argv.slice(1));
    return;
  }
  if (argv.length > 0) {
    process.stderr.write(`unknown command ${JSON.stringify(argv[0])}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const [{ ConfigError }, { KubeConfigError }, { SettingError }, { startControllers }] = await Promise.all([
    import('../../libcalico-go/lib/config/datastore-config.js'),
    import('../../libcalico-go/lib/backend/kubernetes/client.js'),
    import('../pkg/config.js'),
    import('../pkg/run.js'),
  ]);
  let running: Awaited<ReturnType<typeof startControllers>>;
  try {
    running = await startControllers();
  } catch (e) {
    if (e instanceof SettingError || e instanceof ConfigError || e instanceof KubeConfigError) {
      process.stderr.write(`tortie-kube-controllers: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
  const stop = () => {
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

await main(process.argv.slice(2));
