// confd's public entry: the BGP model, BIRD's configuration, BGP secrets, and BIRD itself (its
// supervisor, control-socket client and `show protocols` parser). The node agent's routing loop
// (node/pkg/routing/) uses all of it; `tortiectl node status` (calicoctl/) only the control-socket
// client and the parser, as calicoctl reads BIRD's socket in Calico. Other components import confd
// only through this file; the import check (scripts/check-imports.mjs) refuses anything else.
export { renderBirdConfig } from './bird-config.js';
export { type BgpModel, buildBgpModel } from './model.js';
export { type SecretResolver, fileSecretResolver } from './secrets.js';
export { type BirdProtocolRow, BirdReplyError, bgpNotEstablished, fields, parseBirdProtocolLine, parseBirdShowProtocols } from './supervisor/bird-protocols.js';
export { BirdConfigError, BirdSupervisor } from './supervisor/bird-supervisor.js';
export { BirdcError, birdCommand } from './supervisor/birdc.js';
