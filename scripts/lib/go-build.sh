# Shared by scripts/build-kubernetes.sh, build-images.sh and build-calicoctl.sh (sourced, after each
# has set CACHE and defined log): the go command's environment kept under the cache, and the timing
# of build steps into $CACHE/build-times.log. Defines functions and variables only.

# go_env: everything the go command writes stays under $CACHE; no toolchain download, no workspace,
# static binaries.
go_env() {
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
}

TIMES_LOG="$CACHE/build-times.log"
# Each sourcing shell has its own file for `times` (removed by the caller's EXIT trap).
TIMES_TMP="$CACHE/.times.$$"
now() { date +%s.%N; }
# Sets REPLY to the CPU seconds (user + system) used so far by this shell's finished children.
# `times` must run in this shell, not in a command substitution (a fork, which sees none), so it
# writes to a file.
children_cpu() {
  times >"$TIMES_TMP"
  REPLY="$(awk 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); n += a[1] * 60 + a[2] } printf "%.1f", n }' "$TIMES_TMP")"
}
# timed NAME CMD...: runs CMD, logs and records its wall time and CPU time. The CPU time does not
# grow when other work shares the machine, so it is the better guide to what a quiet machine needs.
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
