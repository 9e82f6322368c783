#!/usr/bin/env bash
# The foundation demo: the seed's pool, five seed nodes, pods addressed through the real CNI
# path (bin/tortie-ipam, exec'd as a runtime does), then tortie-node on one node wiring two pods
# through the tortie CNI plugin in network namespaces, pinging each other, and the operator's
# inspection commands. Everything lives in
# a temporary store and namespaces made here, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d /tmp/tortie-demo.XXXXXX)
TAG=$(printf '%04x' $((RANDOM)))
HOSTNS="tortie-demo-$TAG-host"
LANNS="tortie-demo-$TAG-lan"
AGENT_PID=""
PODNS=("tortie-demo-$TAG-p1" "tortie-demo-$TAG-p2")
cleanup() {
  if [ -n "$AGENT_PID" ]; then kill "$AGENT_PID" 2>/dev/null || true; wait "$AGENT_PID" 2>/dev/null || true; fi
  for ns in "$HOSTNS" "$LANNS" "${PODNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
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

step "tortie-node on playcekube-worker02, and two pods through the tortie CNI plugin"
# The node: a host namespace with its own underlay link (a veth to a LAN namespace).
for ns in "$HOSTNS" "$LANNS" "${PODNS[@]}"; do ip netns add "$ns"; done
ip -n "$HOSTNS" link add eth0 type veth peer name lan0 netns "$LANNS"
ip -n "$HOSTNS" addr add 10.0.0.15/24 dev eth0
ip -n "$LANNS" addr add 10.0.0.1/24 dev lan0
for pair in "$HOSTNS eth0" "$LANNS lan0"; do set -- $pair; ip -n "$1" link set "$2" up; ip -n "$1" link set lo up; done
ip -n "$HOSTNS" route add default via 10.0.0.1
# The seed's drift on purpose: the environment says IPIP Off, the pool says Always.
ip netns exec "$HOSTNS" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin NODENAME=playcekube-worker02 \
  DATASTORE_TYPE=embedded DATASTORE_PATH="$DATASTORE_PATH" TORTIE_RUN_DIR="$WORK/run" TORTIE_STATE_DIR="$WORK/state" \
  IP=autodetect CALICO_IPV4POOL_CIDR=10.233.64.0/18 CALICO_IPV4POOL_IPIP=Off FELIX_HEALTHHOST=127.0.0.1 \
  "$ROOT/bin/tortie-node" 2>"$WORK/agent.log" &
AGENT_PID=$!
for _ in $(seq 100); do [ -S "$WORK/run/cni.sock" ] && break; sleep 0.1; done
sleep 0.5
echo "  tortie-node running (pid $AGENT_PID); what it says about the pool:"
grep -i drift "$WORK/agent.log" | sed 's/^/    /' || true
TCONF=$(printf '{"cniVersion":"0.3.1","name":"k8s-pod-network","type":"tortie","log_level":"info","nodename_file":"%s/state/nodename","agent_socket":"%s/run/cni.sock","ipam":{"type":"tortie-ipam","assign_ipv4":"true","ipv4_pools":["10.233.64.0/18"]},"policy":{"type":"k8s"}}' "$WORK" "$WORK")
ADDRS=()
for n in 0 1; do
  res=$(ip netns exec "$HOSTNS" env -i CNI_COMMAND=ADD CNI_CONTAINERID="web$n" CNI_NETNS="/run/netns/${PODNS[$n]}" \
    CNI_IFNAME=eth0 CNI_ARGS="K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-$n" CNI_PATH="$ROOT/bin:/usr/lib/cni" "$ROOT/bin/tortie" <<<"$TCONF")
  addr=$(echo "$res" | sed -E 's/.*"address":"([0-9.]+)\/.*/\1/')
  ADDRS+=("$addr")
  echo "  pod web-$n: $res"
done
echo "\$ ip netns exec ${PODNS[0]} ping -c 2 ${ADDRS[1]}"
ip netns exec "${PODNS[0]}" ping -c 2 -W 2 "${ADDRS[1]}"
echo "\$ ip route   (on playcekube-worker02)"
ip -n "$HOSTNS" route
echo "\$ ip route   (in pod web-0)"
ip -n "${PODNS[0]}" route
ctl get workloadendpoints -A -o wide
ctl get nodes -o wide

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
    ip netns exec "$HOSTNS" env -i CNI_COMMAND=DEL CNI_CONTAINERID="web$n" CNI_NETNS="/run/netns/${PODNS[$n]}" \
      CNI_IFNAME=eth0 CNI_ARGS="K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-$n" CNI_PATH="$ROOT/bin:/usr/lib/cni" "$ROOT/bin/tortie" <<<"$TCONF"
  done
done
ctl delete -f "$WORK/weps.yaml"
ctl ipam show --show-blocks
ctl ipam check | tail -1
