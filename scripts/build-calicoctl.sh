#!/usr/bin/env bash
# Builds Calico's own calicoctl from the github.com/projectcalico/calico Go module, once, into a cache
# outside the tracked tree; later runs reuse it. The interop tests (libcalico-go/lib/backend/
# calico-interop.test.ts) run it against Tortie's datastores to prove the storage formats match.
#
#   scripts/build-calicoctl.sh            # build if needed; prints "calicoctl<TAB><path>"
#   scripts/build-calicoctl.sh --check    # exit 0 if built, 1 if not; builds nothing
#
# Environment:
#   TORTIE_CACHE   cache root (default /var/cache/tortie). Under it: go/mod (GOMODCACHE), go/build
#                  (GOCACHE), calico/<release>/{src,bin}.
#
# Which version: Calico's v3.x tags are not valid Go module versions for a module without a /v3
# suffix, so the module proxy serves the monorepo only by pseudo-version (commit). No v3.29.x commit
# is served by the proxy this machine reaches; the nearest served release is v3.30.1 (commit
# 393b14e729a6, release-notes/v3.30.1-release-notes.md and manifests name v3.30.1). docs/interop.md
# says what differs from v3.29 for the stored kinds.
#
# Why a wrapper module: the monorepo's go.mod replaces github.com/projectcalico/api and its lib/std,
# lib/httpmachinery nested modules with ./ directories (not in the module zip) and pins every
# k8s.io/* staging module; replace directives only apply in the main module, so `go install
# pkg@version` refuses it. The wrapper repeats upstream's replaces, pointing the ./ ones at the
# published modules of the same release (the api mirror's v3.30.1 commit, lib/std at the same
# commit); lib/httpmachinery, which calicoctl does not import and the proxy does not serve, is
# replaced by an empty local module so the module graph resolves.
set -euo pipefail

RELEASE="v3.30.1"
CALICO_VERSION="v0.0.0-20250529224300-393b14e729a6"   # github.com/projectcalico/calico at v3.30.1
API_VERSION="v0.0.0-20250617202239-c3be7477438e"      # github.com/projectcalico/api at v3.30.1
CACHE="${TORTIE_CACHE:-/var/cache/tortie}"
DIR="$CACHE/calico/$RELEASE"
BIN="$DIR/bin/calicoctl"
STAMP="$DIR/bin/.calicoctl.stamp"
STAMP_KEY="calicoctl github.com/projectcalico/calico@$CALICO_VERSION api@$API_VERSION release=$RELEASE cgo=0 trimpath ldflags=-s,-w,version-stamped v1"

me="build-calicoctl.sh"
log() { printf '[%s] %s\n' "$me" "$*" >&2; }
die() { printf '[%s] FAILED: %s\n' "$me" "$*" >&2; exit 1; }

check=0
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=1; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (known: --check, --help)" ;;
  esac
done

is_built() { [ -x "$BIN" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_KEY" ]; }
if is_built; then printf 'calicoctl\t%s\n' "$BIN"; exit 0; fi
if [ "$check" = 1 ]; then log "not built: calicoctl $RELEASE ($BIN)"; exit 1; fi

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then export PATH="$PATH:/usr/local/go/bin"; fi
command -v go >/dev/null 2>&1 || die "the go command is not installed (Go >= 1.24 is needed)"
command -v flock >/dev/null 2>&1 || die "flock is not installed (apt-get install util-linux)"
mkdir -p "$CACHE" || die "cannot create the cache directory $CACHE (set TORTIE_CACHE)"

exec 9>"$CACHE/build.lock"
if ! flock -n 9; then
  log "another build holds $CACHE/build.lock; waiting for it"
  flock 9
fi
if is_built; then printf 'calicoctl\t%s\n' "$BIN"; exit 0; fi

export GOPATH="$CACHE/go"
export GOMODCACHE="$CACHE/go/mod"
export GOCACHE="$CACHE/go/build"
export GOFLAGS="-modcacherw -buildvcs=false"
export GOTOOLCHAIN=local
export GOWORK=off
export GO111MODULE=on
export CGO_ENABLED=0
mkdir -p "$GOMODCACHE" "$GOCACHE"
log "$(go version); cache $CACHE"

TIMES_LOG="$CACHE/build-times.log"
now() { date +%s.%N; }
TIMES_TMP="$CACHE/.times.$$"
children_cpu() {
  times >"$TIMES_TMP"
  REPLY="$(awk 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); n += a[1] * 60 + a[2] } printf "%.1f", n }' "$TIMES_TMP")"
}
trap 'rm -f "$TIMES_TMP"' EXIT
timed() {
  local name="$1"; shift
  local t0 t1 c0 c1 rc=0 secs cpu
  t0="$(now)"; children_cpu; c0="$REPLY"
  "$@" || rc=$?
  t1="$(now)"; children_cpu; c1="$REPLY"
  secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
  cpu="$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.1f", b - a }')"
  if [ "$rc" = 0 ]; then
    log "$name: ${secs}s (CPU ${cpu}s, load $(cut -d' ' -f1 /proc/loadavg))"
    printf '%s\t%s\t%s\t%ss\tcpu %ss\tload %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)cpu" "$name" "$secs" "$cpu" \
      "$(cut -d' ' -f1 /proc/loadavg)" >>"$TIMES_LOG"
  fi
  return "$rc"
}

PKG="github.com/projectcalico/calico/calicoctl/calicoctl"
src="$DIR/src"
if [ ! -f "$src/.ready" ]; then
  timed "download github.com/projectcalico/calico@$CALICO_VERSION" \
    go mod download github.com/projectcalico/calico@"$CALICO_VERSION" github.com/projectcalico/api@"$API_VERSION" \
      github.com/projectcalico/calico/lib/std@"$CALICO_VERSION" ||
    die "Calico $RELEASE ($CALICO_VERSION) could not be downloaded from the module proxy ($(go env GOPROXY))"
  gomod="$GOMODCACHE/cache/download/github.com/projectcalico/calico/@v/$CALICO_VERSION.mod"
  [ -f "$gomod" ] || die "no go.mod for github.com/projectcalico/calico@$CALICO_VERSION in $GOMODCACHE"
  # Upstream's replaces that name a published module version (k8s.io/* pins, lumberjack).
  pinned="$(awk '/^replace \(/ { r = 1; next } r && /^\)/ { r = 0 } r && /=>/ && $3 != "" && $4 ~ /^v/ { printf "\t%s => %s %s\n", $1, $3, $4 }' "$gomod")"
  [ -n "$pinned" ] || die "found no pinned replace directives in $gomod"
  goline="$(grep -m1 '^go ' "$gomod" || echo 'go 1.24.0')"
  rm -rf "$src.tmp"
  mkdir -p "$src.tmp/stub/httpmachinery"
  printf 'module github.com/projectcalico/calico/lib/httpmachinery\n\ngo 1.24\n' >"$src.tmp/stub/httpmachinery/go.mod"
  {
    echo "// Generated by scripts/build-calicoctl.sh: builds calicoctl from Calico $RELEASE."
    echo "module tortie.local/calicoctlbuild"
    echo
    echo "$goline"
    echo
    echo "require github.com/projectcalico/calico $CALICO_VERSION"
    echo
    echo "replace ("
    printf '\tgithub.com/projectcalico/api => github.com/projectcalico/api %s\n' "$API_VERSION"
    printf '\tgithub.com/projectcalico/calico/lib/std => github.com/projectcalico/calico/lib/std %s\n' "$CALICO_VERSION"
    printf '\tgithub.com/projectcalico/calico/lib/httpmachinery => ./stub/httpmachinery\n'
    echo "$pinned"
    echo ")"
  } >"$src.tmp/go.mod"
  (cd "$src.tmp" && timed "go get calicoctl $RELEASE (resolve and download dependencies)" go get "$PKG@$CALICO_VERSION") ||
    die "resolving calicoctl $RELEASE's dependencies failed (a module not served by the proxy?); see the go output above"
  touch "$src.tmp/.ready"
  rm -rf "$src"
  mv "$src.tmp" "$src"
fi

date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$GOMODCACHE/cache/download/github.com/projectcalico/calico/@v/$CALICO_VERSION.info" 2>/dev/null || true)"
commit="${CALICO_VERSION##*-}"
# As calicoctl/Makefile's LDFLAGS.
ldflags="-s -w -X '$PKG/commands.VERSION=$RELEASE' -X '$PKG/commands.GIT_REVISION=$commit'"
ldflags+=" -X '$PKG/commands/common.VERSION=$RELEASE' -X 'main.VERSION=$RELEASE'"
mkdir -p "$DIR/bin"
tmp="$DIR/bin/.calicoctl.tmp.$$"
rm -f "$tmp"
if ! (cd "$src" && timed "build calicoctl $RELEASE${date:+ ($date)}" go build -trimpath -ldflags "$ldflags" -o "$tmp" "$PKG"); then
  rm -f "$tmp"
  die "building calicoctl $RELEASE failed; see the compiler output above"
fi
mv -f "$tmp" "$BIN"
echo "$STAMP_KEY" >"$STAMP"
printf 'calicoctl\t%s\n' "$BIN"
