#!/usr/bin/env bash
# One-shot set-up on Debian 12 as root: system packages, npm dependencies, build.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(etcd-server etcd-client containernetworking-plugins iptables nftables iproute2 iputils-ping procps openssl bird2 iperf3 tcpdump containerd podman busybox-static gcc libc6-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  # No recommends: podman would pull in netavark, and the tests drive its CNI backend.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# etcd-server's package starts a system etcd; Tortie's tests start their own on free loopback ports.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl stop etcd || true
fi
npm ci --no-audit --no-fund
npm run build
# Real Kubernetes (kube-apiserver, kubectl, kubelet, kube-proxy, scheduler, controller-manager) and
# etcd built from their Go modules into ${TORTIE_CACHE:-/var/cache/tortie}: minutes once, then
# seconds (the cache is outside the tracked tree). Tests that run a real control plane need them.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then export PATH="$PATH:/usr/local/go/bin"; fi
command -v go >/dev/null 2>&1 || { echo "setup.sh: Go is needed to build Kubernetes from its modules (not found on PATH or in /usr/local/go/bin)" >&2; exit 1; }
./scripts/build-kubernetes.sh
./scripts/build-calicoctl.sh  # Calico's own calicoctl v3.30.1 for the interop tests (docs/interop.md)
# Images (pause, agnhost, CoreDNS, busybox) as OCI archives, and the upstream e2e.test + ginkgo, built
# without Docker or a registry into the same cache: minutes once, then seconds (docs/images.md).
./scripts/build-images.sh
