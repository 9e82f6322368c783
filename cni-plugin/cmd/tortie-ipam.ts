// Entry point of bin/tortie-ipam.
import { runPlugin } from '../pkg/skel/run.js';
import { RESULT_VERSIONS } from '../pkg/skel/version.js';
import { ipamHandlers } from '../ipamplugin/plugin.js';

await runPlugin(ipamHandlers(process.env), RESULT_VERSIONS, { abbreviatedResult: true });
