#!/usr/bin/env bash
# Builds a real Kubernetes control plane and node binaries, and etcd, from source through the Go
# module proxy, once, into a cache outside the tracked tree; later runs reuse it (seconds).
#
#   scripts/build-kubernetes.sh                          # all: the six Kubernetes binaries + etcd, etcdctl
#   scripts/build-kubernetes.sh --only kube-apiserver,kubectl,etcd
#   scripts/build-kubernetes.sh --check [--only ...]     # exit 0 if built, 1 if not; builds nothing
#
# Environment:
#   TORTIE_CACHE          cache root (default /var/cache/tortie). Under it: go/mod (GOMODCACHE),
#                         go/build (GOCACHE), k8s/<version>/{src,bin}, etcd/<version>/{src,bin}.
#   TORTIE_K8S_VERSION    k8s.io/kubernetes version (default below); the 31 staging modules k8s.io/*
#                         are taken at the matching v0.<minor>.<patch>.
#   TORTIE_ETCD_VERSION   go.etcd.io/etcd/server/v3 version (default below).
#
# Why a wrapper module: k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
# with ./staging/src/..., and etcd's server module replaces ../api etc.; replace directives only
# apply in the main module, so `go install pkg@version` refuses both. Each is built from a generated
# module that requires it and (for Kubernetes) replaces every staging module with its published
# release; minimum version selection then picks exactly upstream's dependency versions.
#
# Safe to run concurrently (a lock file serialises builds) and idempotent: a binary counts as built
# when it exists next to a stamp naming the version and flags it was built with; binaries are
# written under a temporary name and renamed, so a present binary is always complete.
set -euo pipefail

K8S_VERSION="${TORTIE_K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${TORTIE_ETCD_VERSION:-v3.6.16}"
CACHE="${TORTIE_CACHE:-/var/cache/tortie}"

K8S_BINARIES=(kube-apiserver kubectl kubelet kube-proxy kube-scheduler kube-controller-manager)
ETCD_BINARIES=(etcd etcdctl)
# Upstream's build tags (hack/lib/golang.sh).
K8S_TAGS="selinux,notest,grpcnotrace"

me="build-kubernetes.sh"
log() { printf '[%s] %s\n' "$me" "$*" >&2; }
die() { printf '[%s] FAILED: %s\n' "$me" "$*" >&2; exit 1; }

usage() {
  sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

only=""
check=0
while [ $# -gt 0 ]; do
  case "$1" in
    --only) [ $# -ge 2 ] || die "--only needs a comma-separated list"; only="$2"; shift 2 ;;
    --only=*) only="${1#--only=}"; shift ;;
    --check) check=1; shift ;;
    -h|--help) usage 0 ;;
    *) printf '[%s] unknown argument: %s\n' "$me" "$1" >&2; usage 2 ;;
  esac
done

all=("${K8S_BINARIES[@]}" "${ETCD_BINARIES[@]}")
wanted=()
if [ -n "$only" ]; then
  IFS=',' read -r -a req <<<"$only"
  for b in "${req[@]}"; do
    [ -n "$b" ] || continue
    ok=0
    for a in "${all[@]}"; do [ "$a" = "$b" ] && ok=1; done
    [ "$ok" = 1 ] || die "unknown binary '$b' (known: ${all[*]})"
    wanted+=("$b")
  done
  [ ${#wanted[@]} -gt 0 ] || die "--only names no binary"
else
  wanted=("${all[@]}")
fi

case "$K8S_VERSION" in v1.[0-9]*.[0-9]*) ;; *) die "TORTIE_K8S_VERSION must look like v1.34.4, not '$K8S_VERSION'" ;; esac
case "$ETCD_VERSION" in v3.[0-9]*.[0-9]*) ;; *) die "TORTIE_ETCD_VERSION must look like v3.6.16, not '$ETCD_VERSION'" ;; esac
K8S_MINOR="${K8S_VERSION#v1.}"; K8S_MINOR="${K8S_MINOR%%.*}"
STAGING_VERSION="v0.${K8S_VERSION#v1.}"   # v1.34.4 -> v0.34.4

K8S_DIR="$CACHE/k8s/$K8S_VERSION"
ETCD_DIR="$CACHE/etcd/$ETCD_VERSION"

is_k8s() { local a; for a in "${K8S_BINARIES[@]}"; do [ "$a" = "$1" ] && return 0; done; return 1; }
bin_path() { if is_k8s "$1"; then echo "$K8S_DIR/bin/$1"; else echo "$ETCD_DIR/bin/$1"; fi; }
# What a binary's stamp must say; changing flags or versions here rebuilds.
stamp_key() {
  if is_k8s "$1"; then
    echo "$1 k8s.io/kubernetes@$K8S_VERSION staging=$STAGING_VERSION tags=$K8S_TAGS cgo=0 trimpath ldflags=-s,-w,version-stamped v1"
  else
    echo "$1 go.etcd.io/etcd@$ETCD_VERSION cgo=0 trimpath ldflags=-s,-w v1"
  fi
}
stamp_path() { local p; p="$(bin_path "$1")"; echo "$(dirname "$p")/.$1.stamp"; }
is_built() {
  local p s
  p="$(bin_path "$1")"; s="$(stamp_path "$1")"
  [ -x "$p" ] && [ -f "$s" ] && [ "$(cat "$s")" = "$(stamp_key "$1")" ]
}
missing() { local b; for b in "${wanted[@]}"; do is_built "$b" || echo "$b"; done; }
print_paths() { local b; for b in "${wanted[@]}"; do printf '%s\t%s\n' "$b" "$(bin_path "$b")"; done; }

todo="$(missing)"
if [ -z "$todo" ]; then
  print_paths
  exit 0
fi
if [ "$check" = 1 ]; then
  log "not built: $(echo $todo)"
  exit 1
fi

command -v go >/dev/null 2>&1 || die "the go command is not installed (Go >= 1.24 is needed)"
command -v flock >/dev/null 2>&1 || die "flock is not installed (apt-get install util-linux)"
mkdir -p "$CACHE" || die "cannot create the cache directory $CACHE (set TORTIE_CACHE)"

# One build at a time per cache; a second run waits, then finds the binaries built.
exec 9>"$CACHE/build.lock"
if ! flock -n 9; then
  log "another build holds $CACHE/build.lock; waiting for it"
  flock 9
fi
todo="$(missing)"
if [ -z "$todo" ]; then
  print_paths
  exit 0
fi

. "$(dirname "$0")/lib/go-build.sh"
go_env
trap 'rm -f "$TIMES_TMP"' EXIT

# install_binary NAME OUTDIR PKG LDFLAGS TAGS: build to a temporary name, then rename and stamp.
install_binary() {
  local name="$1" outdir="$2" pkg="$3" ldflags="$4" tags="$5"
  local tmp="$outdir/.$name.tmp.$$"
  mkdir -p "$outdir"
  rm -f "$tmp"
  if ! timed "build $name" go build -trimpath ${tags:+-tags "$tags"} -ldflags "$ldflags" -o "$tmp" "$pkg"; then
    rm -f "$tmp"
    return 1
  fi
  mv -f "$tmp" "$outdir/$name"
  stamp_key "$name" >"$(stamp_path "$name")"
}

need_k8s=(); need_etcd=()
for b in $todo; do
  if is_k8s "$b"; then need_k8s+=("$b"); else need_etcd+=("$b"); fi
done

# ---------------------------------------------------------------- Kubernetes
prepare_k8s() {
  local src="$K8S_DIR/src"
  [ -f "$src/.ready" ] && return 0
  timed "download k8s.io/kubernetes@$K8S_VERSION" go mod download k8s.io/kubernetes@"$K8S_VERSION" ||
    die "k8s.io/kubernetes@$K8S_VERSION could not be downloaded from the module proxy ($(go env GOPROXY))"
  local gomod="$GOMODCACHE/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod"
  [ -f "$gomod" ] || die "no go.mod for k8s.io/kubernetes@$K8S_VERSION in $GOMODCACHE"
  # The staging modules: every `k8s.io/X => ./staging/src/k8s.io/X` replace in upstream's go.mod.
  local staging
  staging="$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/src/.*#\1#p' "$gomod")"
  [ -n "$staging" ] || die "found no staging replace directives in $gomod"
  local goline godebug
  goline="$(grep -m1 '^go ' "$gomod" || echo 'go 1.24.0')"
  godebug="$(grep -m1 '^godebug ' "$gomod" || echo "godebug default=go1.$K8S_MINOR")"

  rm -rf "$src.tmp"
  mkdir -p "$src.tmp"
  {
    echo "// Generated by scripts/build-kubernetes.sh: builds k8s.io/kubernetes $K8S_VERSION commands."
    echo "module tortie.local/k8sbuild"
    echo
    echo "$goline"
    echo
    echo "$godebug"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    local m
    for m in $staging; do printf '\t%s => %s %s\n' "$m" "$m" "$STAGING_VERSION"; done
    echo ")"
  } >"$src.tmp/go.mod"
  {
    echo "//go:build tools"
    echo
    echo "// Keeps the commands' packages in the module graph."
    echo "package tools"
    echo
    echo "import ("
    local b
    for b in "${K8S_BINARIES[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b"; done
    echo ")"
  } >"$src.tmp/tools.go"
  log "wrapper module for k8s.io/kubernetes $K8S_VERSION: $(echo "$staging" | wc -l) staging modules at $STAGING_VERSION"
  (cd "$src.tmp" && timed "go mod tidy (k8s $K8S_VERSION: resolve and download dependencies)" go mod tidy) ||
    die "resolving k8s.io/kubernetes $K8S_VERSION's dependencies failed (a module not served by the proxy?); see the go output above"
  touch "$src.tmp/.ready"
  rm -rf "$src"
  mv "$src.tmp" "$src"
}

build_k8s() {
  local name="$1" p ldflags=""
  local date
  date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$GOMODCACHE/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.info" 2>/dev/null || true)"
  [ -n "$date" ] || date="1970-01-01T00:00:00Z"
  # As hack/lib/version.sh: the same keys in client-go's and component-base's version packages.
  # gitCommit is left empty: the module proxy does not say which commit the tag is.
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X '$p.gitVersion=$K8S_VERSION' -X '$p.gitMajor=1' -X '$p.gitMinor=$K8S_MINOR'"
    ldflags+=" -X '$p.gitTreeState=clean' -X '$p.gitCommit=' -X '$p.buildDate=$date'"
  done
  (cd "$K8S_DIR/src" && install_binary "$name" "$K8S_DIR/bin" "k8s.io/kubernetes/cmd/$name" "-s -w$ldflags" "$K8S_TAGS") ||
    die "building $name ($K8S_VERSION) failed; see the compiler output above"
}

# ---------------------------------------------------------------- etcd
prepare_etcd() {
  local src="$ETCD_DIR/src"
  [ -f "$src/.ready" ] && return 0
  timed "download go.etcd.io/etcd/server/v3@$ETCD_VERSION" \
    go mod download go.etcd.io/etcd/server/v3@"$ETCD_VERSION" go.etcd.io/etcd/etcdctl/v3@"$ETCD_VERSION" ||
    die "etcd $ETCD_VERSION could not be downloaded from the module proxy ($(go env GOPROXY))"
  local gomod="$GOMODCACHE/cache/download/go.etcd.io/etcd/server/v3/@v/$ETCD_VERSION.mod"
  local goline
  goline="$(grep -m1 '^go ' "$gomod" || echo 'go 1.24.0')"
  rm -rf "$src.tmp"
  mkdir -p "$src.tmp/cmd/etcd" "$src.tmp/cmd/etcdctl"
  {
    echo "// Generated by scripts/build-kubernetes.sh: builds etcd $ETCD_VERSION."
    echo "module tortie.local/etcdbuild"
    echo
    echo "$goline"
    echo
    echo "require ("
    printf '\tgo.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION"
    printf '\tgo.etcd.io/etcd/etcdctl/v3 %s\n' "$ETCD_VERSION"
    echo ")"
  } >"$src.tmp/go.mod"
  # etcd's own server/main.go and etcdctl/main.go.
  cat >"$src.tmp/cmd/etcd/main.go" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
EOF
  cat >"$src.tmp/cmd/etcdctl/main.go" <<'EOF'
package main

import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

func main() {
	ctlv3.MustStart()
}
EOF
  (cd "$src.tmp" && timed "go mod tidy (etcd $ETCD_VERSION: resolve and download dependencies)" go mod tidy) ||
    die "resolving etcd $ETCD_VERSION's dependencies failed; see the go output above"
  touch "$src.tmp/.ready"
  rm -rf "$src"
  mv "$src.tmp" "$src"
}

build_etcd() {
  local name="$1"
  (cd "$ETCD_DIR/src" && install_binary "$name" "$ETCD_DIR/bin" "./cmd/$name" "-s -w" "") ||
    die "building $name ($ETCD_VERSION) failed; see the compiler output above"
}

t_start="$(now)"
if [ ${#need_k8s[@]} -gt 0 ]; then
  prepare_k8s
  for b in "${need_k8s[@]}"; do build_k8s "$b"; done
fi
if [ ${#need_etcd[@]} -gt 0 ]; then
  prepare_etcd
  for b in "${need_etcd[@]}"; do build_etcd "$b"; done
fi
log "done in $(awk -v a="$t_start" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')s"
print_paths
