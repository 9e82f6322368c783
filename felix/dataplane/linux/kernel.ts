// Kernel settings the dataplane needs in the node's network namespace, as Felix's
// configureKernel applies them at start (IPForwarding=Enabled): forward between the underlay and
// the pods' veths.
import { writeSysctl } from './iproute.js';

export function configureKernel(opts: { ipv6?: boolean } = {}): void {
  writeSysctl('net.ipv4.ip_forward', 1);
  if (opts.ipv6) writeSysctl('net.ipv6.conf.all.forwarding', 1);
}
