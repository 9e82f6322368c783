#!/usr/bin/env bash
# The upstream Kubernetes NetworkPolicy e2e suite (test/e2e/network/netpol, Kubernetes v1.34.4) in
# one command: a fresh lab cluster (`tortie-lab up --kubernetes`), `tortie-lab e2e` on it, the lab
# taken down again whatever happens. Root only (network namespaces). See docs/conformance.md.
#
#   scripts/netpol-e2e.sh                          # the whole Netpol focus on 2 nodes with Tortie
#   scripts/netpol-e2e.sh --focus "default-deny-ingress" --procs 2 --nodes 3 --report-dir /tmp/r
#   scripts/netpol-e2e.sh --cni bridge             # the control: Debian's bridge CNI, no enforcer
#
# --cni bridge-knp (kube-network-policies over the bridge CNI) is refused on a kernel without the
# nftables `queue` expression (CONFIG_NFT_QUEUE), which kube-network-policies needs for every
# packet it decides.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LAB="$ROOT/bin/tortie-lab"
cni=tortie nodes=2 procs=1 focus=Netpol report="" skip=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cni) cni=${2:?--cni needs a value}; shift 2 ;;
    --nodes) nodes=${2:?--nodes needs a value}; shift 2 ;;
    --procs) procs=${2:?--procs needs a value}; shift 2 ;;
    --focus) focus=${2:?--focus needs a value}; shift 2 ;;
    --skip) skip=${2:?--skip needs a value}; shift 2 ;;
    --report-dir) report=${2:?--report-dir needs a value}; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "netpol-e2e: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$cni" in
  tortie|bridge) ;;
  bridge-knp)
    echo "netpol-e2e: --cni bridge-knp: kube-network-policies queues packets with the nftables 'queue' expression, and this kernel lacks it (CONFIG_NFT_QUEUE is not set: 'queue num 100' → 'Could not process rule: No such file or directory')" >&2
    exit 2 ;;
  *) echo "netpol-e2e: --cni must be tortie or bridge, got $cni" >&2; exit 2 ;;
esac
[[ "$nodes" =~ ^[1-9][0-9]?$ ]] || { echo "netpol-e2e: --nodes must be 1-99, got $nodes" >&2; exit 2; }
[ -x "$LAB" ] || { echo "netpol-e2e: $LAB not built (npm run build)" >&2; exit 2; }

name="ne$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
report=${report:-"$PWD/netpol-e2e-$cni-$(date -u +%Y%m%dT%H%M%SZ)"}
trap '"$LAB" down "$name" >/dev/null 2>&1 || true' EXIT
"$LAB" up --kubernetes --name "$name" --nodes "$nodes" --cni "$cni"
args=(e2e "$name" --focus "$focus" --procs "$procs" --report-dir "$report")
[ -n "$skip" ] && args+=(--skip "$skip")
"$LAB" "${args[@]}"
