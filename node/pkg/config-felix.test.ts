// FELIX_* variables: each one is in force, refused (naming the variable, the value and why), or
// accepted with exactly one warning saying Tortie does not support it. Also TORTIE_BGP_SECRETS_DIR.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentConfigError, type Env, parseAgentConfig } from './config.js';

const parse = (env: Env) => parseAgentConfig(env, { hostname: () => 'node-1' });

function refusal(env: Env): string {
  try {
    parse(env);
  } catch (e) {
    assert.ok(e instanceof AgentConfigError, String(e));
    return e.message;
  }
  assert.fail(`${JSON.stringify(env)} should be refused`);
}

test('FELIX_WIREGUARDENABLED=true is refused: the variable, the value and the reason', () => {
  assert.equal(
    refusal({ FELIX_WIREGUARDENABLED: 'true' }),
    'invalid node agent configuration: FELIX_WIREGUARDENABLED="true": is not supported: Tortie has no WireGuard encryption ' +
      '(and this kernel has no WireGuard), so pod traffic would cross the network unencrypted; unset it or set it to false',
  );
  // Felix's boolean spellings count.
  assert.match(refusal({ FELIX_WIREGUARDENABLED: 'Yes' }), /FELIX_WIREGUARDENABLED="Yes": is not supported: Tortie has no WireGuard/);
  assert.match(refusal({ FELIX_WIREGUARDENABLEDV6: '1' }), /FELIX_WIREGUARDENABLEDV6="1": is not supported: Tortie has no WireGuard/);
  assert.match(refusal({ FELIX_WIREGUARDHOSTENCRYPTIONENABLED: 't' }), /FELIX_WIREGUARDHOSTENCRYPTIONENABLED="t": is not supported/);
});

test('FELIX_BPFENABLED=true and FELIX_USEINTERNALDATAPLANEDRIVER=false are refused', () => {
  assert.match(refusal({ FELIX_BPFENABLED: 'true' }), /FELIX_BPFENABLED="true": is not supported: Tortie has no eBPF dataplane \(it programs nftables\); unset it or set it to false$/);
  assert.match(
    refusal({ FELIX_USEINTERNALDATAPLANEDRIVER: 'false' }),
    /FELIX_USEINTERNALDATAPLANEDRIVER="false": is not supported: Tortie has no external dataplane drivers.*; unset it or set it to true$/,
  );
});

test('the same features switched off are in force, without a warning', () => {
  const c = parse({
    FELIX_WIREGUARDENABLED: 'false',
    FELIX_WIREGUARDENABLEDV6: 'false',
    FELIX_BPFENABLED: 'false',
    FELIX_USEINTERNALDATAPLANEDRIVER: 'true',
    FELIX_XDPENABLED: 'false',
    FELIX_USAGEREPORTINGENABLED: 'false',
    FELIX_TYPHAK8SSERVICENAME: 'none',
    FELIX_IPTABLESBACKEND: 'NFT',
    FELIX_IPINIPENABLED: 'false',
  });
  assert.deepEqual(c.warnings, []);
  assert.equal(c.felix.params.wireguardEnabled, false);
});

test('failsafe ports: one warning each, naming the variable and why they mean nothing here', () => {
  const c = parse({ FELIX_FAILSAFEINBOUNDHOSTPORTS: 'tcp:22,udp:68', FELIX_FAILSAFEOUTBOUNDHOSTPORTS: 'tcp:179' });
  assert.deepEqual(c.warnings, [
    'FELIX_FAILSAFEINBOUNDHOSTPORTS="tcp:22,udp:68": not supported by Tortie (host endpoints are not enforced by Tortie, so failsafe ports have no meaning); ignored',
    'FELIX_FAILSAFEOUTBOUNDHOSTPORTS="tcp:179": not supported by Tortie (host endpoints are not enforced by Tortie, so failsafe ports have no meaning); ignored',
  ]);
});

test("Calico's manifest and kubespray variables: in force silently, the rest one warning each", () => {
  const env: Env = {
    // in force
    FELIX_DEFAULTENDPOINTTOHOSTACTION: 'ACCEPT',
    FELIX_IPV6SUPPORT: 'false',
    FELIX_HEALTHENABLED: 'true',
    FELIX_LOGSEVERITYSCREEN: 'info',
    FELIX_IPINIPMTU: '1440',
    FELIX_VXLANMTU: '1410',
    FELIX_MTUIFACEPATTERN: '^eth',
    FELIX_PROMETHEUSMETRICSENABLED: 'false',
    FELIX_PROMETHEUSMETRICSPORT: '9091',
    FELIX_INTERFACEPREFIX: 'cali',
    FELIX_IPTABLESREFRESHINTERVAL: '60',
    // warned
    FELIX_WIREGUARDMTU: '1400',
    FELIX_CHAININSERTMODE: 'Append',
    FELIX_IGNORELOOSERPF: 'true',
    FELIX_IPTABLESLOCKTIMEOUTSECS: '10',
    FELIX_LOGFILEPATH: '/var/log/calico/felix.log',
    FELIX_PROMETHEUSGOMETRICSENABLED: 'false',
    FELIX_IPINIPENABLED: 'true',
    FELIX_XDPENABLED: 'true',
    FELIX_DATASTORETYPE: 'kubernetes',
    FELIX_TYPHAK8SSERVICENAME: 'calico-typha',
  };
  const c = parse(env);
  const warned = [
    'FELIX_CHAININSERTMODE',
    'FELIX_DATASTORETYPE',
    'FELIX_IGNORELOOSERPF',
    'FELIX_IPINIPENABLED',
    'FELIX_IPTABLESLOCKTIMEOUTSECS',
    'FELIX_LOGFILEPATH',
    'FELIX_PROMETHEUSGOMETRICSENABLED',
    'FELIX_TYPHAK8SSERVICENAME',
    'FELIX_WIREGUARDMTU',
    'FELIX_XDPENABLED',
  ];
  // Exactly one line per variable not implemented, each naming it and saying so.
  assert.deepEqual(
    c.warnings.map((w) => w.split('=')[0]),
    warned,
  );
  for (const w of c.warnings) assert.match(w, /^FELIX_[A-Z0-9]+="[^"]*": not supported by Tortie( \(.+\))?; ignored$/);
  assert.ok(c.warnings.includes('FELIX_WIREGUARDMTU="1400": not supported by Tortie (only WireGuard uses it, and Tortie has none); ignored'));
  assert.ok(c.warnings.includes('FELIX_IPINIPENABLED="true": not supported by Tortie (this kernel has no IPIP; only the pod MTU allows for it); ignored'));
  assert.ok(c.warnings.includes('FELIX_DATASTORETYPE="kubernetes": not supported by Tortie (Tortie reads DATASTORE_TYPE); ignored'));
  assert.ok(c.warnings.includes('FELIX_TYPHAK8SSERVICENAME="calico-typha": not supported by Tortie (Tortie has no Typha); ignored'));
  assert.equal(c.felix.ipv6Support, false);
  assert.equal(c.felix.ipipMTU, 1440);
});

test('FELIX_IPV6SUPPORT: default true (as Felix), false and true read', () => {
  assert.equal(parse({}).felix.ipv6Support, true);
  assert.equal(parse({ FELIX_IPV6SUPPORT: 'false' }).felix.ipv6Support, false);
  assert.equal(parse({ FELIX_IPV6SUPPORT: 'TRUE' }).felix.ipv6Support, true);
  assert.match(refusal({ FELIX_IPV6SUPPORT: 'maybe' }), /FELIX_IPV6SUPPORT="maybe": is not a boolean/);
});

test('a refused variable is reported with the other problems, not instead of them', () => {
  const m = refusal({ FELIX_WIREGUARDENABLED: 'true', FELIX_BPFENABLED: 'true', AS: 'x' });
  assert.match(m, /3 problems/);
  assert.match(m, /FELIX_WIREGUARDENABLED="true"/);
  assert.match(m, /FELIX_BPFENABLED="true"/);
  assert.match(m, /AS="x"/);
});

test('TORTIE_BGP_SECRETS_DIR: absolute directory, unset by default', () => {
  assert.equal(parse({}).bgpSecretsDir, undefined);
  assert.equal(parse({ TORTIE_BGP_SECRETS_DIR: '/etc/tortie/bgp-secrets/' }).bgpSecretsDir, '/etc/tortie/bgp-secrets');
  assert.match(refusal({ TORTIE_BGP_SECRETS_DIR: 'secrets' }), /TORTIE_BGP_SECRETS_DIR="secrets": must be an absolute path/);
});
