#!/usr/bin/env bash
# Builds, without Docker and without a registry, the container images a Kubernetes cluster on this
# machine runs, and the upstream NetworkPolicy e2e binary, once, into a cache outside the tracked
# tree; later runs reuse it (seconds).
#
#   scripts/build-images.sh                      # the images and e2e.test + ginkgo
#   scripts/build-images.sh --only images        # the images only (pause, agnhost, coredns, busybox)
#   scripts/build-images.sh --only pause,agnhost,e2e.test
#   scripts/build-images.sh --only kube-network-policies   # the peer enforcer (not built by default)
#   scripts/build-images.sh --check [--only ...] # exit 0 if built, 1 if not; builds nothing
#   scripts/build-images.sh --list               # print "<ref>\t<archive>" for every image
#   scripts/build-images.sh --only images --out DIR   # write the archives to DIR, always anew
#                                                # (binaries still from the cache): a second build to
#                                                # compare with the cached one, byte for byte
#
# Images (OCI image archives, `ctr -n k8s.io images import FILE` takes them; linux/amd64; blobs
# content-addressed; reproducible: two builds give the same bytes and digests):
#   $CACHE/images/pause-3.10.1.tar     registry.k8s.io/pause:3.10.1 (kubelet 1.34's sandbox image):
#                                      upstream build/pause/linux/pause.c, gcc -static
#   $CACHE/images/agnhost-2.56.tar     registry.k8s.io/e2e-test-images/agnhost:2.56 (the tag of
#                                      test/utils/image/manifest.go at k8s v1.34.4): agnhost
#                                      (CGO_ENABLED=0) on a busybox base, as its Dockerfile lays it
#   $CACHE/images/coredns-v1.12.1.tar  registry.k8s.io/coredns/coredns:v1.12.1 (kubeadm 1.34's)
#   $CACHE/images/busybox-1.35.0.tar   tortie.local/busybox:1.35.0 (Debian's busybox-static)
#   $CACHE/images/tortie-<version>.tar  tortie.local/tortie:<package.json version>: the node agent,
#                                      tortiectl, tortie-install-cni, tortie-kube-controllers and the CNI plugins (this tree's
#                                      dist/ and production node_modules, run by this host's Node),
#                                      BIRD 2, iproute2, nftables with their libraries, on busybox
#                                      (images/tortie-rootfs.mjs). Rebuilt when any of it changes: its
#                                      stamp holds the content hash (npm run build first).
# Binaries:
#   $CACHE/k8s/<version>/bin/e2e.test, ginkgo   (go test -c k8s.io/kubernetes/test/e2e)
#   $CACHE/images/bin/{pause,agnhost,coredns,kube-network-policies}
#
# Adding an image is one call of `image REF ARCHIVE-NAME [config flags] -- ENTRY...` in
# build_images below (entries: file:/dst:src[:mode], dir:/dst[:mode], link:/dst:target,
# tree:/dst:srcdir, busybox:/bin/busybox-path, --layer to start a new layer); images/oci-image.mjs
# writes the archive.
#
# Environment: TORTIE_CACHE (default /var/cache/tortie), TORTIE_K8S_VERSION (v1.34.4),
#   TORTIE_COREDNS_VERSION (v1.12.1), TORTIE_KNP_VERSION (kube-network-policies, v0.8.0),
#   SOURCE_DATE_EPOCH (timestamps in the images; default 0).
# Go builds run under `nice -n 19` with the shared module and build caches under $CACHE/go.
set -euo pipefail
# The whole script is one compound command, read before it runs: editing the file while a long build
# runs does not change (or break) the running build.
{

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
K8S_VERSION="${TORTIE_K8S_VERSION:-v1.34.4}"
COREDNS_VERSION="${TORTIE_COREDNS_VERSION:-v1.12.1}"
KNP_VERSION="${TORTIE_KNP_VERSION:-v0.8.0}"
CACHE="${TORTIE_CACHE:-/var/cache/tortie}"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-0}"

PAUSE_TAG="3.10.1"
AGNHOST_TAG="2.56"
BUSYBOX_VERSION="$(dpkg-query -W -f '${Version}' busybox-static 2>/dev/null | sed 's/^[0-9]*://; s/-.*//' || true)"
[ -n "$BUSYBOX_VERSION" ] || BUSYBOX_VERSION="unknown"

TORTIE_VERSION="$(sed -n 's/^  "version": "\([^"]*\)",*$/\1/p' "$ROOT/package.json" | head -1)"
[ -n "$TORTIE_VERSION" ] || TORTIE_VERSION="unknown"

IMAGES=(pause agnhost coredns busybox tortie)
BINARIES=(e2e.test ginkgo)
EXTRA=(kube-network-policies)

me="build-images.sh"
log() { printf '[%s] %s\n' "$me" "$*" >&2; }
die() { printf '[%s] FAILED: %s\n' "$me" "$*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }

only=""; check=0; list=0; out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --only) [ $# -ge 2 ] || die "--only needs a comma-separated list"; only="$2"; shift 2 ;;
    --only=*) only="${1#--only=}"; shift ;;
    --check) check=1; shift ;;
    --list) list=1; shift ;;
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out="$2"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    -h|--help) usage 0 ;;
    *) printf '[%s] unknown argument: %s\n' "$me" "$1" >&2; usage 2 ;;
  esac
done

case "$K8S_VERSION" in v1.[0-9]*.[0-9]*) ;; *) die "TORTIE_K8S_VERSION must look like v1.34.4, not '$K8S_VERSION'" ;; esac
K8S_MINOR="${K8S_VERSION#v1.}"; K8S_MINOR="${K8S_MINOR%%.*}"
STAGING_VERSION="v0.${K8S_VERSION#v1.}"
K8S_DIR="$CACHE/k8s/$K8S_VERSION"
IMG_DIR="$CACHE/images"
BIN_DIR="$IMG_DIR/bin"
if [ -n "$out" ]; then
  mkdir -p "$out" || die "cannot create $out"
  IMG_DIR="$(cd "$out" && pwd)"
  rm -f "$IMG_DIR"/.*.tar.stamp
fi

# ------------------------------------------------------------------ what is wanted
all=("${IMAGES[@]}" "${BINARIES[@]}" "${EXTRA[@]}")
wanted=()
if [ -n "$only" ]; then
  IFS=',' read -r -a req <<<"$only"
  for b in "${req[@]}"; do
    case "$b" in
      "") continue ;;
      images) wanted+=("${IMAGES[@]}"); continue ;;
      e2e) wanted+=("${BINARIES[@]}"); continue ;;
    esac
    ok=0; for a in "${all[@]}"; do [ "$a" = "$b" ] && ok=1; done
    [ "$ok" = 1 ] || die "unknown target '$b' (known: images e2e ${all[*]})"
    wanted+=("$b")
  done
  [ ${#wanted[@]} -gt 0 ] || die "--only names nothing"
else
  wanted=("${IMAGES[@]}" "${BINARIES[@]}")
fi

# Image refs and archive names (one place; testing/images.ts reads --list).
image_ref() {
  case "$1" in
    pause) echo "registry.k8s.io/pause:$PAUSE_TAG" ;;
    agnhost) echo "registry.k8s.io/e2e-test-images/agnhost:$AGNHOST_TAG" ;;
    coredns) echo "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" ;;
    busybox) echo "tortie.local/busybox:$BUSYBOX_VERSION" ;;
    tortie) echo "tortie.local/tortie:$TORTIE_VERSION" ;;
  esac
}
image_archive() {
  case "$1" in
    pause) echo "$IMG_DIR/pause-$PAUSE_TAG.tar" ;;
    agnhost) echo "$IMG_DIR/agnhost-$AGNHOST_TAG.tar" ;;
    coredns) echo "$IMG_DIR/coredns-$COREDNS_VERSION.tar" ;;
    busybox) echo "$IMG_DIR/busybox-$BUSYBOX_VERSION.tar" ;;
    tortie) echo "$IMG_DIR/tortie-$TORTIE_VERSION.tar" ;;
  esac
}
if [ "$list" = 1 ]; then
  for i in "${IMAGES[@]}"; do printf '%s\t%s\n' "$(image_ref "$i")" "$(image_archive "$i")"; done
  exit 0
fi

is_image() { local a; for a in "${IMAGES[@]}"; do [ "$a" = "$1" ] && return 0; done; return 1; }
target_path() {
  case "$1" in
    e2e.test|ginkgo) echo "$K8S_DIR/bin/$1" ;;
    kube-network-policies) echo "$BIN_DIR/$1" ;;
    *) image_archive "$1" ;;
  esac
}
# What a target's stamp must say; a change here (versions, flags, the image writer) rebuilds it.
writer_sum() { sha256sum "$ROOT/images/oci-image.mjs" "$0" | sha256sum | cut -c1-16; }
# Tortie's image: the hash of every file it stages (dist/, node_modules, Node, BIRD, ip, nft, libraries).
TORTIE_KEY=""
tortie_key() {
  if [ -z "$TORTIE_KEY" ]; then
    TORTIE_KEY="$(node "$ROOT/images/tortie-rootfs.mjs" --root "$ROOT" --key)" || die "cannot stage Tortie's image (npm run build first?)"
  fi
  echo "$TORTIE_KEY"
}
stamp_key() {
  case "$1" in
    e2e.test) echo "e2e.test k8s.io/kubernetes@$K8S_VERSION staging=$STAGING_VERSION cgo=0 trimpath ldflags=-s,-w,version-stamped v1" ;;
    ginkgo) echo "ginkgo (k8s.io/kubernetes@$K8S_VERSION's) cgo=0 trimpath v1" ;;
    kube-network-policies) echo "kube-network-policies sigs.k8s.io/kube-network-policies@$KNP_VERSION v1" ;;
    tortie) echo "tortie $(image_ref tortie) busybox=$BUSYBOX_VERSION epoch=$SOURCE_DATE_EPOCH writer=$(writer_sum) content=$(tortie_key)" ;;
    *) echo "$1 $(image_ref "$1") k8s=$K8S_VERSION coredns=$COREDNS_VERSION busybox=$BUSYBOX_VERSION epoch=$SOURCE_DATE_EPOCH writer=$(writer_sum)" ;;
  esac
}
stamp_path() { local p; p="$(target_path "$1")"; echo "$(dirname "$p")/.$(basename "$p").stamp"; }
is_built() {
  local p s; p="$(target_path "$1")"; s="$(stamp_path "$1")"
  [ -f "$p" ] && [ -f "$s" ] && [ "$(cat "$s")" = "$(stamp_key "$1")" ]
}
missing() { local b; for b in "${wanted[@]}"; do is_built "$b" || echo "$b"; done; }
print_paths() {
  local b
  for b in "${wanted[@]}"; do
    if is_image "$b"; then printf '%s\t%s\t%s\n' "$b" "$(image_ref "$b")" "$(target_path "$b")"
    else printf '%s\t%s\n' "$b" "$(target_path "$b")"; fi
  done
}

todo="$(missing)"
if [ -z "$todo" ]; then print_paths; exit 0; fi
if [ "$check" = 1 ]; then log "not built: $(echo $todo)"; exit 1; fi

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then export PATH="$PATH:/usr/local/go/bin"; fi
command -v go >/dev/null 2>&1 || die "the go command is not installed (Go >= 1.24 is needed)"
command -v node >/dev/null 2>&1 || die "node is not installed (it writes the image archives)"
command -v flock >/dev/null 2>&1 || die "flock is not installed (apt-get install util-linux)"
mkdir -p "$IMG_DIR" "$BIN_DIR" "$K8S_DIR/bin" || die "cannot create $IMG_DIR (set TORTIE_CACHE)"

# One build of a target at a time: each target (and the shared wrapper module) has its own lock
# under $CACHE/locks, so the images can be built while e2e.test builds, and a second run waits
# for the first and then finds the target built.
mkdir -p "$CACHE/locks"
# locked NAME CMD...: runs CMD holding $CACHE/locks/NAME.lock.
locked() {
  local name="$1" fd rc=0; shift
  exec {fd}>"$CACHE/locks/$name.lock"
  if ! flock -n "$fd"; then log "another build holds $CACHE/locks/$name.lock; waiting for it"; flock "$fd"; fi
  "$@" || rc=$?
  exec {fd}>&-
  return "$rc"
}

. "$ROOT/scripts/lib/go-build.sh"
go_env
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tortie-images.XXXXXX")"
trap 'rm -f "$TIMES_TMP"; rm -rf "$WORK"' EXIT
# Go at the lowest priority: the machine is shared.
gonice() { nice -n 19 go "$@"; }
finish() { # finish TARGET TMPFILE: rename into place, then stamp
  local p; p="$(target_path "$1")"
  mv -f "$2" "$p"
  stamp_key "$1" >"$(stamp_path "$1")"
}

# ------------------------------------------------------------------ Go wrapper modules
# k8s.io/kubernetes's test side (agnhost, e2e.test, ginkgo): a wrapper module as in
# build-kubernetes.sh (every staging module replaced by its published v0.<minor>.<patch>), whose
# tools file also names every package e2e_test.go imports, so `go mod tidy` records their sums and
# `go test -c k8s.io/kubernetes/test/e2e` builds from the module cache alone.
prepare_k8s_test() { [ -f "$K8S_DIR/test-src/.ready" ] || locked k8s-test-src prepare_k8s_test_locked; }
prepare_k8s_test_locked() {
  local src="$K8S_DIR/test-src"
  [ -f "$src/.ready" ] && return 0
  timed "download k8s.io/kubernetes@$K8S_VERSION" gonice mod download k8s.io/kubernetes@"$K8S_VERSION" ||
    die "k8s.io/kubernetes@$K8S_VERSION could not be downloaded from the module proxy ($(go env GOPROXY))"
  local gomod="$GOMODCACHE/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod"
  local moddir="$GOMODCACHE/k8s.io/kubernetes@$K8S_VERSION"
  [ -f "$gomod" ] && [ -d "$moddir" ] || die "k8s.io/kubernetes@$K8S_VERSION is not in $GOMODCACHE"
  local staging goline godebug
  staging="$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/src/.*#\1#p' "$gomod")"
  [ -n "$staging" ] || die "found no staging replace directives in $gomod"
  goline="$(grep -m1 '^go ' "$gomod" || echo 'go 1.24.0')"
  godebug="$(grep -m1 '^godebug ' "$gomod" || echo "godebug default=go1.$K8S_MINOR")"
  # Non-standard-library imports of the e2e suite's test main.
  local e2eimports
  e2eimports="$(sed -n '/^import (/,/^)/p' "$moddir/test/e2e/e2e_test.go" | grep -v '^[[:space:]]*//' |
    sed -n 's#^[[:space:]]*[A-Za-z_]*[[:space:]]*"\([^"]*\.[^"]*\)"#\1#p' | grep '/' | sort -u)"
  [ -n "$e2eimports" ] || die "could not read the imports of test/e2e/e2e_test.go"
  rm -rf "$src.tmp"; mkdir -p "$src.tmp"
  {
    echo "// Generated by scripts/build-images.sh: builds k8s.io/kubernetes $K8S_VERSION test binaries."
    echo "module tortie.local/k8stestbuild"; echo; echo "$goline"; echo; echo "$godebug"; echo
    echo "require k8s.io/kubernetes $K8S_VERSION"; echo
    echo "replace ("
    local m; for m in $staging; do printf '\t%s => %s %s\n' "$m" "$m" "$STAGING_VERSION"; done
    echo ")"
  } >"$src.tmp/go.mod"
  {
    echo "//go:build tools"; echo; echo "package tools"; echo; echo "import ("
    printf '\t_ "%s"\n' k8s.io/kubernetes/test/images/agnhost k8s.io/kubernetes/test/e2e github.com/onsi/ginkgo/v2/ginkgo
    local i; for i in $e2eimports; do printf '\t_ "%s"\n' "$i"; done
    echo ")"
  } >"$src.tmp/tools.go"
  (cd "$src.tmp" && timed "go mod tidy (k8s $K8S_VERSION test binaries)" gonice mod tidy) ||
    die "resolving k8s.io/kubernetes $K8S_VERSION's test dependencies failed; see the go output above"
  touch "$src.tmp/.ready"
  rm -rf "$src"; mv "$src.tmp" "$src"
}
k8s_ldflags() {
  local p date ld=""
  date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$GOMODCACHE/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.info" 2>/dev/null || true)"
  [ -n "$date" ] || date="1970-01-01T00:00:00Z"
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld+=" -X '$p.gitVersion=$K8S_VERSION' -X '$p.gitMajor=1' -X '$p.gitMinor=$K8S_MINOR'"
    ld+=" -X '$p.gitTreeState=clean' -X '$p.gitCommit=' -X '$p.buildDate=$date'"
  done
  echo "-s -w$ld"
}

AGNHOST_BIN="$BIN_DIR/agnhost"
build_agnhost_bin() {
  local key="agnhost k8s.io/kubernetes@$K8S_VERSION cgo=0 trimpath ldflags=-s,-w v1"
  [ -x "$AGNHOST_BIN" ] && [ "$(cat "$BIN_DIR/.agnhost.bin.stamp" 2>/dev/null)" = "$key" ] && return 0
  prepare_k8s_test
  (cd "$K8S_DIR/test-src" && timed "build agnhost" gonice build -trimpath -ldflags "-s -w" -o "$BIN_DIR/.agnhost.tmp" k8s.io/kubernetes/test/images/agnhost) ||
    die "building agnhost failed; see the compiler output above"
  mv -f "$BIN_DIR/.agnhost.tmp" "$AGNHOST_BIN"; echo "$key" >"$BIN_DIR/.agnhost.bin.stamp"
}
build_e2e() {
  prepare_k8s_test
  local tmp="$K8S_DIR/bin/.e2e.test.tmp.$$"
  (cd "$K8S_DIR/test-src" && timed "build e2e.test (go test -c k8s.io/kubernetes/test/e2e)" \
    gonice test -c -trimpath -ldflags "$(k8s_ldflags)" -o "$tmp" k8s.io/kubernetes/test/e2e) ||
    { rm -f "$tmp"; die "building e2e.test failed; see the compiler output above"; }
  finish e2e.test "$tmp"
}
build_ginkgo() {
  prepare_k8s_test
  local tmp="$K8S_DIR/bin/.ginkgo.tmp.$$"
  (cd "$K8S_DIR/test-src" && timed "build ginkgo" gonice build -trimpath -ldflags "-s -w" -o "$tmp" github.com/onsi/ginkgo/v2/ginkgo) ||
    { rm -f "$tmp"; die "building ginkgo failed; see the compiler output above"; }
  finish ginkgo "$tmp"
}

# A plain wrapper module that requires MODULE@VERSION and builds PKG (a main package in it).
# go_wrapper DIR MODULE VERSION PKG
go_wrapper() {
  local dir="$1" mod="$2" ver="$3" pkg="$4"
  [ -f "$dir/.ready" ] && return 0
  timed "download $mod@$ver" gonice mod download "$mod@$ver" ||
    die "$mod@$ver could not be downloaded from the module proxy ($(go env GOPROXY))"
  local gomod="$GOMODCACHE/cache/download/$mod/@v/$ver.mod" goline
  goline="$(grep -m1 '^go ' "$gomod" || echo 'go 1.24.0')"
  rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
  printf '// Generated by scripts/build-images.sh: builds %s %s.\nmodule tortie.local/build\n\n%s\n\nrequire %s %s\n' \
    "$pkg" "$ver" "$goline" "$mod" "$ver" >"$dir.tmp/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" >"$dir.tmp/tools.go"
  (cd "$dir.tmp" && timed "go mod tidy ($mod $ver)" gonice mod tidy) ||
    die "resolving $mod $ver's dependencies failed; see the go output above"
  touch "$dir.tmp/.ready"; rm -rf "$dir"; mv "$dir.tmp" "$dir"
}

COREDNS_BIN="$BIN_DIR/coredns"
build_coredns_bin() {
  local key="coredns github.com/coredns/coredns@$COREDNS_VERSION cgo=0 trimpath ldflags=-s,-w v1"
  [ -x "$COREDNS_BIN" ] && [ "$(cat "$BIN_DIR/.coredns.bin.stamp" 2>/dev/null)" = "$key" ] && return 0
  local src="$CACHE/coredns/$COREDNS_VERSION/src"
  go_wrapper "$src" github.com/coredns/coredns "$COREDNS_VERSION" github.com/coredns/coredns
  (cd "$src" && timed "build coredns" gonice build -trimpath -ldflags "-s -w" -o "$BIN_DIR/.coredns.tmp" github.com/coredns/coredns) ||
    die "building coredns failed; see the compiler output above"
  mv -f "$BIN_DIR/.coredns.tmp" "$COREDNS_BIN"; echo "$key" >"$BIN_DIR/.coredns.bin.stamp"
}

build_knp() {
  local src="$CACHE/kube-network-policies/$KNP_VERSION/src"
  go_wrapper "$src" sigs.k8s.io/kube-network-policies "$KNP_VERSION" sigs.k8s.io/kube-network-policies/cmd
  local tmp="$BIN_DIR/.kube-network-policies.tmp.$$"
  (cd "$src" && timed "build kube-network-policies" gonice build -trimpath -ldflags "-s -w" -o "$tmp" sigs.k8s.io/kube-network-policies/cmd) ||
    { rm -f "$tmp"; die "building kube-network-policies failed; see the compiler output above"; }
  finish kube-network-policies "$tmp"
}

# pause: upstream's build/pause/linux/pause.c from the k8s.io/kubernetes module, compiled as its
# Makefile does (gcc -Os -Wall -Werror -static -DVERSION=...), stripped.
PAUSE_BIN="$BIN_DIR/pause"
build_pause_bin() {
  local key="pause k8s.io/kubernetes@$K8S_VERSION build/pause/linux/pause.c $PAUSE_TAG gcc-static v1"
  [ -x "$PAUSE_BIN" ] && [ "$(cat "$BIN_DIR/.pause.bin.stamp" 2>/dev/null)" = "$key" ] && return 0
  command -v gcc >/dev/null 2>&1 || die "gcc is needed to build pause (apt-get install gcc libc6-dev)"
  local c="$GOMODCACHE/k8s.io/kubernetes@$K8S_VERSION/build/pause/linux/pause.c"
  [ -f "$c" ] || timed "download k8s.io/kubernetes@$K8S_VERSION" go mod download k8s.io/kubernetes@"$K8S_VERSION" ||
    die "k8s.io/kubernetes@$K8S_VERSION could not be downloaded"
  [ -f "$c" ] || die "$c not found"
  timed "build pause (gcc -static)" nice -n 19 gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_TAG" \
    -ffile-prefix-map="$(dirname "$c")=." -o "$BIN_DIR/.pause.tmp" "$c" || die "compiling pause.c failed"
  strip "$BIN_DIR/.pause.tmp"
  mv -f "$BIN_DIR/.pause.tmp" "$PAUSE_BIN"; echo "$key" >"$BIN_DIR/.pause.bin.stamp"
}

# ------------------------------------------------------------------ images
# image NAME REF [--entrypoint JSON] [--cmd JSON] [--env K=V]... [--workdir D] [--user U]
#       [--expose PORT/PROTO]... [--label K=V]... -- ENTRY...
# Writes the OCI archive of target NAME (see images/oci-image.mjs for the entries).
image() {
  local name="$1" ref="$2"; shift 2
  local tmp; tmp="$(target_path "$name").tmp.$$"
  timed "image $ref" node "$ROOT/images/oci-image.mjs" --ref "$ref" --out "$tmp" "$@" >&2 ||
    { rm -f "$tmp"; die "writing the image $ref failed"; }
  finish "$name" "$tmp"
}
BUSYBOX="$(command -v busybox || echo /bin/busybox)"
# The base layer: Debian's static busybox with its applets as symlinks, /etc/passwd and /etc/group.
busybox_base() {
  local etc="$WORK/etc-base"
  mkdir -p "$etc"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$etc/group"
  printf '%s\n' "busybox:$BUSYBOX" "file:/etc/passwd:$etc/passwd:0644" "file:/etc/group:$etc/group:0644" \
    "dir:/tmp:1777" "dir:/root:0700"
}
PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

build_image_pause() {
  build_pause_bin
  # As build/pause/Dockerfile: the binary alone, USER 65535:65535, ENTRYPOINT ["/pause"].
  image pause "$(image_ref pause)" --entrypoint '["/pause"]' --user 65535:65535 --env "$PATH_ENV" \
    -- "file:/pause:$PAUSE_BIN:0755"
}
build_image_busybox() {
  [ -x "$BUSYBOX" ] || die "busybox is not installed (apt-get install busybox-static)"
  local base; mapfile -t base < <(busybox_base)
  image busybox "$(image_ref busybox)" --cmd '["sh"]' --env "$PATH_ENV" -- "${base[@]}"
}
build_image_agnhost() {
  build_agnhost_bin
  [ -x "$BUSYBOX" ] || die "busybox is not installed (apt-get install busybox-static)"
  local moddir="$GOMODCACHE/k8s.io/kubernetes@$K8S_VERSION/test/images/agnhost"
  local etc="$WORK/etc-agnhost"; mkdir -p "$etc"
  # As test/images/agnhost/Dockerfile: the user and group some e2e tests expect in the image.
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nuser-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n' >"$etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nuser-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n' >"$etc/group"
  local base; mapfile -t base < <(busybox_base | grep -v '^file:/etc/')
  image agnhost "$(image_ref agnhost)" --entrypoint '["/agnhost"]' --cmd '["pause"]' --env "$PATH_ENV" \
    --expose 80/tcp --expose 8080/tcp --expose 8081/tcp --expose 9376/tcp --expose 5000/tcp \
    -- "${base[@]}" "file:/etc/passwd:$etc/passwd:0644" "file:/etc/group:$etc/group:0644" \
    "dir:/home/user-defined-in-image:0755:1000:1000" \
    --layer "file:/agnhost:$AGNHOST_BIN:0755" "link:/agnhost-2:agnhost" "dir:/uploads:0755" \
    "file:/localhost.crt:$moddir/porter/localhost.crt:0644" "file:/localhost.key:$moddir/porter/localhost.key:0644"
}
build_image_coredns() {
  build_coredns_bin
  # As CoreDNS's Dockerfile (distroless static): /coredns, CA certificates, ENTRYPOINT ["/coredns"],
  # WORKDIR /. It runs as root here (the upstream image's non-root user needs a file capability
  # to bind :53).
  local ca=()
  [ -f /etc/ssl/certs/ca-certificates.crt ] && ca=("file:/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:0644")
  image coredns "$(image_ref coredns)" --entrypoint '["/coredns"]' --workdir / --env "$PATH_ENV" \
    --expose 53/tcp --expose 53/udp -- "file:/coredns:$COREDNS_BIN:0755" "${ca[@]}"
}

build_image_tortie() {
  [ -x "$BUSYBOX" ] || die "busybox is not installed (apt-get install busybox-static)"
  local stage="$WORK/tortie-root" base
  node "$ROOT/images/tortie-rootfs.mjs" --root "$ROOT" --out "$stage" >/dev/null || die "staging Tortie's image failed"
  mapfile -t base < <(busybox_base)
  # Layer 1: busybox, Node, BIRD, iproute2, nftables and their libraries (changes rarely);
  # layer 2: Tortie (dist/, node_modules, launchers).
  image tortie "$(image_ref tortie)" --cmd '["/usr/bin/tortie-node"]' --env "$PATH_ENV" \
    --label "org.opencontainers.image.title=tortie" --label "org.opencontainers.image.version=$TORTIE_VERSION" \
    -- "${base[@]}" "tree:/:$stage/base" --layer "tree:/:$stage/app"
}

build_target() {
  is_built "$1" && return 0
  case "$1" in
    pause|agnhost|coredns|busybox|tortie) "build_image_$1" ;;
    e2e.test) build_e2e ;;
    ginkgo) build_ginkgo ;;
    kube-network-policies) build_knp ;;
  esac
}
t_start="$(now)"
for b in $todo; do locked "$b" build_target "$b"; done
log "done in $(awk -v a="$t_start" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')s"
print_paths
exit 0
}
