#!/usr/bin/env bash
# The main job: the seed's cluster alive on this machine. tortie-lab builds five nodes
# (playcekube-master01..03, worker01..02) in network namespaces, each running tortie-node with
# BIRD in a node-to-node mesh; pods are placed through the real CNI path; then the operator's
# inspection commands from the seed run against it, and every pod probes every other pod; then a
# Kubernetes NetworkPolicy is enforced by the agents and explained by tortiectl; last, the seed's
# four drifts are injected one by one (tortie-lab break) and found by `tortiectl cluster check`.
# Everything is removed on exit (namespaces, agents, BIRD, the datastore).
set -euo pipefail
cd "$(dirname "$0")/.."
LAB="demo$$"
export TORTIE_LAB_DIR="${TORTIE_LAB_DIR:-$(mktemp -d /tmp/tortie-lab.XXXXXX)}"
lab() { "$PWD/bin/tortie-lab" "$@"; }
cleanup() { lab down "$LAB" >/dev/null 2>&1 || true; rm -rf "$TORTIE_LAB_DIR"; }
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { echo "\$ $*"; }

# scripts/demo.sh --kubernetes: the same cluster as a real Kubernetes cluster (kubelet, containerd,
# kube-proxy on every node) with Tortie installed from manifests/tortie.yaml as an operator installs
# Calico; the seed's inspections through kubectl and tortiectl; Services; a NetworkPolicy applied
# with kubectl. TORTIE_DEMO_NODES=K builds K nodes instead of the seed's five (a busy machine).
kube_demo() {
  local size=(--preset seed) k
  [ -n "${TORTIE_DEMO_NODES:-}" ] && size=(--nodes "$TORTIE_DEMO_NODES")
  k() { lab kubectl "$LAB" -- "$@"; }
  step "The seed's cluster as real Kubernetes (${size[*]}), Tortie installed with kubectl apply -f manifests/tortie.yaml"
  lab up --kubernetes "${size[@]}" --cni manifest --name "$LAB"

  step "The seed's nginx Deployments (agnhost serving HTTP on 80: no registry here) and their Services"
  k create namespace web >/dev/null
  for app in nginx-a nginx-b; do
    k -n web create deployment "$app" --image=registry.k8s.io/e2e-test-images/agnhost:2.56 --replicas=2 --port=80 -- /agnhost netexec --http-port=80 >/dev/null
    k -n web expose deployment "$app" --port=80 >/dev/null
  done
  k -n kube-system create deployment probe --image=registry.k8s.io/e2e-test-images/agnhost:2.56 -- /agnhost pause >/dev/null
  for d in web/nginx-a web/nginx-b kube-system/probe; do k -n "${d%/*}" rollout status "deployment/${d#*/}" --timeout=180s >/dev/null; done
  show kubectl get pods -A -o wide;        k get pods -A -o wide

  step "The seed's inspection commands"
  show kubectl get nodes -o wide;          k get nodes -o wide
  show "kubectl -n kube-system get all";   k -n kube-system get all
  local tn; tn=$(k -n kube-system get pods -l k8s-app=tortie-node -o jsonpath='{.items[0].metadata.name}')
  show kubectl -n kube-system describe pod "$tn"; k -n kube-system describe pod "$tn" | sed -n '1,/^Events:/p'
  show kubectl -n kube-system get cm tortie-config -o jsonpath='{.data.calico_backend} {.data.cluster_type}'
  k -n kube-system get cm tortie-config -o jsonpath='{.data.calico_backend} {.data.cluster_type}'; echo
  local nodes; nodes=$(k get nodes -o jsonpath='{.items[*].metadata.name}')
  local last=${nodes##* }
  show calicoctl version;                  lab ctl "$LAB" -- version
  show calicoctl node status "(on $last)"; lab ctl "$LAB" --node "$last" --no-wait -- node status
  show calicoctl get nodes -o wide;        lab ctl "$LAB" -- get nodes -o wide
  show calicoctl get ippool -o wide;       lab ctl "$LAB" -- get ippool -o wide
  show calicoctl get workloadendpoints -A; lab ctl "$LAB" -- get workloadendpoints -A
  show calicoctl ipam show --show-blocks;  lab ctl "$LAB" -- ipam show --show-blocks
  show ls -l /etc/cni/net.d "(on $last)";  lab exec "$LAB" "$last" -- ls -l /etc/cni/net.d
  show ip route "(on $last)";              lab exec "$LAB" "$last" -- ip route

  # connect FROM(ns/pod) TO(addr:port): "ok" or "blocked", real packets from inside the pod.
  connect() { if k -n "${1%/*}" exec "${1#*/}" -- /agnhost connect "$2" --timeout=3s >/dev/null 2>&1; then echo ok; else echo blocked; fi; }
  pods() { k -n "$1" get pods -l "$2" -o jsonpath='{range .items[*]}{.metadata.name} {.status.podIP} {.spec.nodeName}{"\n"}{end}'; }
  local probe; probe=kube-system/$(k -n kube-system get pods -l app=probe -o jsonpath='{.items[0].metadata.name}')
  local svc; svc=$(k -n web get service nginx-b -o jsonpath='{.spec.clusterIP}')
  matrix() {
    local from to fname tname fip tip fnode tnode
    while read -r fname fip fnode; do
      while read -r tname tip tnode; do
        [ "$fname" = "$tname" ] && continue
        printf '  %-28s (%s) -> %-28s %-15s (%s): %s\n' "web/$fname" "$fnode" "web/$tname" "$tip:80" "$tnode" "$(connect "web/$fname" "$tip:80")"
      done < <(pods web 'app in (nginx-a,nginx-b)')
      printf '  %-28s (%s) -> Service nginx-b %s:80: %s\n' "web/$fname" "$fnode" "$svc" "$(connect "web/$fname" "$svc:80")"
    done < <(pods web app=nginx-a)
    printf '  %-28s -> Service nginx-b %s:80: %s\n' "$probe" "$svc" "$(connect "$probe" "$svc:80")"
    printf '  %-28s -> nginx-b.web.svc.cluster.local:80 (CoreDNS): %s\n' "$probe" "$(connect "$probe" nginx-b.web.svc.cluster.local:80)"
  }
  step "Connectivity, real packets (agnhost connect inside the pods): pod<->pod across nodes, pod->Service"
  matrix

  step "A Kubernetes NetworkPolicy, applied with kubectl: only kube-system may reach the nginx pods"
  show kubectl apply -f - "(NetworkPolicy web/nginx-from-kube-system)"
  k apply -f - <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: nginx-from-kube-system, namespace: web}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
      ports:
        - {port: 80, protocol: TCP}
YAML
  # Enforced once every node's policy loop has run a pass after it (the agents' readiness says so).
  local a1; a1=$(pods web app=nginx-a | head -1)
  local b1; b1=$(pods web app=nginx-b | head -1 | cut -d' ' -f2)
  for _ in $(seq 30); do [ "$(connect "web/${a1%% *}" "$b1:80")" = blocked ] && break; sleep 1; done
  show calicoctl get networkpolicy -A;     lab ctl "$LAB" -- get networkpolicy -A
  echo "(expected: web → web blocked, kube-system → web ok)"
  matrix
  show tortiectl policy explain "web/${a1%% *}" "web/$(pods web app=nginx-b | head -1 | cut -d' ' -f1)" 80/TCP
  lab ctl "$LAB" -- policy explain "web/${a1%% *}" "web/$(pods web app=nginx-b | head -1 | cut -d' ' -f1)" 80/TCP || true
}
# scripts/demo.sh --datastore kubernetes: the same demo on the Kubernetes API datastore (a real
# kube-apiserver in the lab; nodes, namespaces and pods are API objects; the NetworkPolicy is applied
# with kubectl), plus what Calico keeps there, seen with kubectl.
DS=()
kdd_inspect() {
  local c
  for c in "get nodes -o wide" "get pods -A -o wide" "get ippools" "get ipamblocks,blockaffinities" "get ipamhandles"; do
    # shellcheck disable=SC2086
    show kubectl $c;                       lab kubectl "$LAB" -- $c
  done
}
# A Kubernetes NetworkPolicy from stdin: with kubectl on the kubernetes datastore, else tortiectl.
apply_k8s_policy() {
  if [ ${#DS[@]} -gt 0 ]; then show kubectl apply -f -; lab kubectl "$LAB" -- apply -f -
  else show calicoctl apply -f - "(a Kubernetes NetworkPolicy)"; lab ctl "$LAB" -- apply -f -; fi
}
if [ "${1:-}" = "--kubernetes" ]; then
  kube_demo
  exit 0
elif [ "${1:-}" = "--datastore" ] && [ "${2:-}" = "kubernetes" ] && [ $# -eq 2 ]; then
  DS=(--datastore kubernetes)
elif [ $# -gt 0 ]; then
  echo "usage: scripts/demo.sh [--kubernetes | --datastore kubernetes]" >&2
  exit 2
fi

step "Bringing up the seed's cluster (5 nodes, BGP full mesh, pool default-pool 10.233.64.0/18, blockSize 24)"
lab up --name "$LAB" --preset seed --mode bgp "${DS[@]}"

step "Pods, through the real CNI path (tortie → portmap → bandwidth)"
lab pod add "$LAB" worker01 default/nginx-1 --serve 80 --labels app=nginx
lab pod add "$LAB" worker02 default/nginx-2 --serve 80 --labels app=nginx
lab pod add "$LAB" worker02 default/nginx-3 --serve 80 --labels app=nginx
lab pod add "$LAB" master01 kube-system/coredns-1 --serve 80 --labels k8s-app=kube-dns
lab pod add "$LAB" master02 kube-system/coredns-2 --serve 80 --labels k8s-app=kube-dns
lab pod add "$LAB" master03 kube-system/metrics-server-1 --serve 80 --labels k8s-app=metrics-server

# No waiting here: `up` returned when every agent was ready (BGP sessions Established), and each
# `pod add` when every other node routed the new pod.

step "The seed's inspection commands"
show calicoctl version;                    lab ctl "$LAB" -- version
for n in master01 master02 master03 worker01 worker02; do
  show calicoctl node status "(on playcekube-$n)"; lab ctl "$LAB" --node "$n" -- node status
done
show calicoctl get nodes -o wide;          lab ctl "$LAB" -- get nodes -o wide
show calicoctl get ippool -o wide;         lab ctl "$LAB" -- get ippool -o wide
show calicoctl get workloadendpoints -A;   lab ctl "$LAB" -- get workloadendpoints -A
show calicoctl ipam show --show-blocks;    lab ctl "$LAB" -- ipam show --show-blocks
show ip route "(on worker02)";             lab exec "$LAB" worker02 -- ip route
if [ ${#DS[@]} -gt 0 ]; then kdd_inspect; fi

step "Connectivity: every pod to every pod, TCP port 80"
lab probe "$LAB" --port 80

step "Network policy (the seed's \"policy type k8s\"): only kube-system may reach the nginx pods"
apply_k8s_policy <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: nginx-from-kube-system, namespace: default}
spec:
  podSelector: {matchLabels: {app: nginx}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
      ports:
        - {port: 80, protocol: TCP}
YAML
show calicoctl get networkpolicy -A;       lab ctl "$LAB" -- get networkpolicy -A
# Expected: nginx pods no longer reach each other; kube-system still reaches them.
EXPECT="$TORTIE_LAB_DIR/expect.json"
cat > "$EXPECT" <<'JSON'
{"default/nginx-1": {"default/nginx-2": false, "default/nginx-3": false},
 "default/nginx-2": {"default/nginx-1": false, "default/nginx-3": false},
 "default/nginx-3": {"default/nginx-1": false, "default/nginx-2": false}}
JSON
# No waiting either: `ctl … apply` (and `kubectl apply` on the kubernetes datastore) returned when every node had programmed the policy.
lab probe "$LAB" --port 80 --expect "$EXPECT"
show tortiectl policy explain default/nginx-2 default/nginx-1 80/TCP
lab ctl "$LAB" -- policy explain default/nginx-2 default/nginx-1 80/TCP || true
show tortiectl policy explain kube-system/coredns-1 default/nginx-1 80/TCP
lab ctl "$LAB" -- policy explain kube-system/coredns-1 default/nginx-1 80/TCP

step "The seed's drifts, injected one by one and found by tortiectl cluster check"
# The agents write their CalicoNodeStatus every second here (Calico's default is 10 s), and the check
# counts events (restarts, next-hop changes) of the last 20 s, so each healed drift ages out quickly.
for n in master01 master02 master03 worker01 worker02; do
  lab ctl "$LAB" --no-wait -- patch caliconodestatus "playcekube-$n" -p '{"spec":{"updatePeriodSeconds":1}}' >/dev/null
done
check() { lab ctl "$LAB" --no-wait -- cluster check --window 20s "$@"; }
show tortiectl cluster check;              check
# The finding kinds cluster check reports now, comma-separated ("" when healthy).
kinds() { check -o json 2>/dev/null | node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>console.log([...new Set(JSON.parse(s).findings.map((f)=>f.kind))].sort().join(",")))'; }
finds() { # FAULT KIND: (once the last one has aged out) break it, show what cluster check finds, heal it
  for _ in $(seq 60); do [ -z "$(kinds)" ] && break; sleep 1; done
  show tortie-lab break "$1";              lab break "$LAB" "$1" | tail -1
  for _ in $(seq 30); do [ "$(kinds)" = "$2" ] && break; sleep 1; done
  show tortiectl cluster check;            check || true
  show tortie-lab heal "$1";               lab heal "$LAB" "$1" | tail -1
}
finds ipip-env pool-drift     # calico-node's CALICO_IPV4POOL_IPIP disagrees with the pool's ipipMode
finds route-flap routes       # a block "via 10.0.0.12" and moments later "via 10.0.0.13"
finds restart-loop restarts   # calico-kube-controllers' 79 restarts (here: the node agent killed 3 times)
finds mtu mtu                 # an MTU that does not fit (here: the underlay shrinks under the pods' MTU)
for _ in $(seq 60); do [ -z "$(kinds)" ] && break; sleep 1; done
show tortiectl cluster check "(all healed)"; check
