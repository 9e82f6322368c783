import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CniError } from '../skel/errors.js';
import { ipamAnnotations } from './annotations.js';

const P4 = 'cni.projectcalico.org/ipv4pools';
const P6 = 'cni.projectcalico.org/ipv6pools';
const ADDRS = 'cni.projectcalico.org/ipAddrs';
const NOIPAM = 'cni.projectcalico.org/ipAddrsNoIpam';

function refuses(pod: Record<string, string>, ns: Record<string, string>, noIpam: boolean, msg: RegExp): void {
  assert.throws(() => ipamAnnotations(pod, ns, noIpam), (e: unknown) => e instanceof CniError && e.code === 2 && msg.test(e.message));
}

describe('Calico IPAM annotations', () => {
  it('none: an empty request', () => {
    assert.deepEqual(ipamAnnotations({ other: 'x' }, {}, false), {});
  });

  it("pools: the pod's win over the namespace's, names and CIDRs of the right family", () => {
    assert.deepEqual(ipamAnnotations({ [P4]: '["a", "10.1.0.0/16"]' }, { [P4]: '["ns-pool"]' }, false), { ipv4Pools: ['a', '10.1.0.0/16'], poolsFrom: 'pod' });
    assert.deepEqual(ipamAnnotations({}, { [P4]: '["ns-pool"]', [P6]: '["fd00::/48"]' }, false), { ipv4Pools: ['ns-pool'], ipv6Pools: ['fd00::/48'], poolsFrom: 'namespace' });
    // A pod naming only IPv6 pools still shadows the namespace's IPv4 ones (the pod's annotations decide).
    assert.deepEqual(ipamAnnotations({ [P6]: '["v6"]' }, { [P4]: '["ns-pool"]' }, false), { ipv6Pools: ['v6'], poolsFrom: 'pod' });
  });

  it('addresses: canonical; ipAddrsNoIpam only with the feature switch; not both', () => {
    assert.deepEqual(ipamAnnotations({ [ADDRS]: '["10.0.0.7", "fd00:0::1"]' }, {}, false), { ipAddrs: ['10.0.0.7', 'fd00::1'] });
    assert.deepEqual(ipamAnnotations({ [NOIPAM]: '["10.9.9.9"]' }, {}, true), { ipAddrsNoIpam: ['10.9.9.9'] });
    refuses({ [NOIPAM]: '["10.9.9.9"]' }, {}, false, /ipAddrsNoIpam=.*10\.9\.9\.9.* needs feature_control\.ip_addrs_no_ipam: true/);
    refuses({ [NOIPAM]: '["10.9.9.9"]', [ADDRS]: '["10.0.0.1"]' }, {}, true, /cannot both be set/);
  });

  it('bad values are refused naming the annotation, where it was and the value', () => {
    refuses({ [P4]: 'pool-a' }, {}, false, /^pod annotation cni\.projectcalico\.org\/ipv4pools="pool-a" is not JSON/);
    refuses({}, { [P4]: '{"a":1}' }, false, /^namespace annotation cni\.projectcalico\.org\/ipv4pools=.* must be a JSON list of non-empty strings/);
    refuses({ [P4]: '["fd00::/48"]' }, {}, false, /holds "fd00::\/48", which is not an IPv4 CIDR/);
    refuses({ [P6]: '["10.0.0.0/33"]' }, {}, false, /holds "10\.0\.0\.0\/33", which is not a valid CIDR/);
    refuses({ [ADDRS]: '["10.0.0.300"]' }, {}, false, /holds "10\.0\.0\.300", which is not an IP address/);
    refuses({ [ADDRS]: '[]' }, {}, false, /lists no address/);
    refuses({ [ADDRS]: '[1]' }, {}, false, /must be a JSON list of non-empty strings/);
  });
});
