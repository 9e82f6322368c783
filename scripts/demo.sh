#!/usr/bin/env bash
# The foundation demo: the seed's pool, five seed nodes, pods addressed through the real CNI
# path (bin/tortie-ipam, exec'd as a runtime does), two of them wired by Debian's ptp in network
# namespaces and pinging each other, then the operator's inspection commands. Everything lives in
# a temporary store and namespaces made here, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d /tmp/tortie-demo.XXXXXX)
TAG=$(printf '%04x' $((RANDOM)))
HOSTNS="tortie-demo-$TAG-host"
PODNS=("tortie-demo-$TAG-p1" "tortie-demo-$TAG-p2")
cleanup() {
  for ns in "$HOSTNS" "${PODNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

export DATASTORE_TYPE=embedded DATASTORE_PATH="$WORK/datastore.db"
ctl() { echo "\$ tortiectl $*"; "$ROOT/bin/tortiectl" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "The seed's IP pool"
cat > "$WORK/pool.yaml" <<'YAML'
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: default-pool
spec:
  blockSize: 24
  cidr: 10.233.64.0/18
  ipipMode: Always
  natOutgoing: true
  nodeSelector: all()
  vxlanMode: Never
YAML
ctl apply -f "$WORK/pool.yaml"
ctl version
ctl get ippool -o wide

step "Pods on the seed's five nodes, through bin/tortie-ipam (CNI ADD)"
NODES=(playcekube-master01 playcekube-master02 playcekube-master03 playcekube-worker01 playcekube-worker02)
conf() {
  printf '{"cniVersion":"0.3.1","name":"k8s-pod-network","type":"tortie-ipam","nodename":"%s","datastore_type":"embedded","datastore_path":"%s","ipam":{"type":"tortie-ipam","assign_ipv4":"true","ipv4_pools":["default-pool"]}}' "$1" "$DATASTORE_PATH"
}
: > "$WORK/weps.yaml"
for i in $(seq 0 14); do
  node=${NODES[$((i % 5))]}
  out=$(env -i CNI_COMMAND=ADD CNI_CONTAINERID="demo$i" CNI_NETNS=/var/run/netns/none CNI_IFNAME=eth0 \
    CNI_ARGS="K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx-$i" CNI_PATH=/usr/lib/cni \
    "$ROOT/bin/tortie-ipam" <<<"$(conf "$node")")
  printf '  %-22s nginx-%-3s %s\n' "$node" "$i" "$out"
  addr=$(echo "$out" | sed -E 's/.*"address":"([0-9.]+)\/.*/\1/')
  # The pod's workload endpoint, as the tortie CNI plugin records it; nginx-14 "vanishes" without one.
  [ "$i" -lt 14 ] && cat >> "$WORK/weps.yaml" <<YAML
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  name: ${node//-/--}-k8s-nginx--$i-eth0
  namespace: default
  labels: {app: nginx}
spec:
  node: $node
  orchestrator: k8s
  pod: nginx-$i
  endpoint: eth0
  containerID: demo$i
  interfaceName: cali$(printf 'default.nginx-%s' "$i" | sha1sum | cut -c1-11)
  ipNetworks: [$addr/32]
  profiles: [kns.default]
YAML
done
ctl apply -f "$WORK/weps.yaml"
ctl get workloadendpoints -A
ctl ipam show --show-blocks
last=$(echo "$out" | sed -E 's/.*"address":"([0-9.]+)\/.*/\1/')
ctl ipam show --ip="$last"

step "Two pods wired by Debian's ptp with tortie-ipam, in namespaces of their own"
for ns in "$HOSTNS" "${PODNS[@]}"; do ip netns add "$ns"; done
ip -n "$HOSTNS" link set lo up
PTPCONF=$(printf '{"cniVersion":"1.0.0","name":"ptp-demo","type":"ptp","nodename":"playcekube-worker02","datastore_path":"%s","ipam":{"type":"tortie-ipam"}}' "$DATASTORE_PATH")
: > "$WORK/ptp-weps.yaml"
ADDRS=()
for n in 0 1; do
  res=$(ip netns exec "$HOSTNS" env -i CNI_COMMAND=ADD CNI_CONTAINERID="ptp$n" CNI_NETNS="/run/netns/${PODNS[$n]}" \
    CNI_IFNAME=eth0 CNI_PATH="$ROOT/bin:/usr/lib/cni" /usr/lib/cni/ptp <<<"$PTPCONF")
  addr=$(echo "$res" | tr -d ' \n' | sed -E 's/.*"address":"([0-9.]+)\/.*/\1/')
  ADDRS+=("$addr")
  echo "  pod ${PODNS[$n]} got $addr"
  cat >> "$WORK/ptp-weps.yaml" <<YAML
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: playcekube--worker02-cni-ptp$n-eth0, namespace: default}
spec: {node: playcekube-worker02, orchestrator: cni, workload: ptp$n, endpoint: eth0, containerID: ptp$n, interfaceName: eth0, ipNetworks: [$addr/32]}
YAML
done
ctl apply -f "$WORK/ptp-weps.yaml"
echo "\$ ip netns exec ${PODNS[0]} ping -c 2 ${ADDRS[1]}"
ip netns exec "${PODNS[0]}" ping -c 2 -W 2 "${ADDRS[1]}"
echo "\$ ip -n ${PODNS[0]} route"
ip -n "${PODNS[0]}" route

step "Leak check: pod nginx-14 went away without a DEL, so no workload uses its address"
ctl ipam check --show-problem-ips -o "$WORK/report.json" | sed -n '/Scanning for IPs that are allocated/,$p'
ctl ipam release --from-report="$WORK/report.json" --force

step "DEL of every pod (twice: DEL is idempotent)"
for round in 1 2; do
  for i in $(seq 0 14); do
    env -i CNI_COMMAND=DEL CNI_CONTAINERID="demo$i" CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
      "$ROOT/bin/tortie-ipam" <<<"$(conf "${NODES[$((i % 5))]}")"
  done
  for n in 0 1; do
    ip netns exec "$HOSTNS" env -i CNI_COMMAND=DEL CNI_CONTAINERID="ptp$n" CNI_NETNS="/run/netns/${PODNS[$n]}" \
      CNI_IFNAME=eth0 CNI_PATH="$ROOT/bin:/usr/lib/cni" /usr/lib/cni/ptp <<<"$PTPCONF"
  done
done
ctl delete -f "$WORK/weps.yaml"
ctl delete -f "$WORK/ptp-weps.yaml"
ctl ipam show --show-blocks
ctl ipam check | tail -1
