#!/usr/bin/env bash
# The newcomer's walk (issue 16): a fresh Debian 12 root made with debootstrap (minbase plus
# ca-certificates, git and curl), this machine's Node copied in the way the official tarball lays it out
# (/usr/local/{bin,include,lib}), a `git clone` of this checkout's HEAD, then the README's commands inside
# the root as root. Run as root on a Debian/Ubuntu host with debootstrap installed:
#
#   scripts/fresh-root.sh [--root DIR] STEP...
#
# Steps (in the order a newcomer takes them; each can be rerun):
#   make      debootstrap the root (skipped when DIR already holds one), copy Node in
#   compiler  apt-get install python3 make g++ inside the root (only needed when better-sqlite3 cannot
#             download its prebuilt binary and has to build from source)
#   clone     remove DIR/root/lifeline and `git clone` this checkout into it
#   update    fetch this checkout's HEAD into the clone, keeping node_modules
#   install   npm install
#   pretest   npm run pretest (installs postgresql, chromium, ansible-core inside the root)
#   start     npm start, wait for /v1/health, then SIGTERM it and check nothing of it stays
#   scale     the README's "Scaling out" blocks (needs pretest's postgresql)
#   tests     npx vitest run on a representative set of files ($FRESH_TESTS overrides the list)
#   test      npm test (the whole suite)
#   shell     an interactive shell in the root
#
# Everything inside runs in its own mount and pid namespace (unshare): /proc, /sys and /dev are mounted
# for it only, and every process started inside (PostgreSQL, chromium, runners) ends with the step.
set -euo pipefail

ROOT=/work/fresh-root
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { sed -n '2,22p' "$0"; exit 64; }
[ "$(id -u)" = 0 ] || { echo "fresh-root.sh: run as root (debootstrap, chroot)" >&2; exit 1; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
SUITE=bookworm
# The mirror this host's apt uses (deb822 or one-line sources), else Debian's default.
MIRROR=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
  grep -oE 'https?://[^ ]+' | grep -v security | head -n 1 || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
TESTS=${FRESH_TESTS:-test/scripts/pretest.test.ts test/store/store.test.ts test/e2e/dashboard.test.ts test/examples/ansible.test.ts test/package/pack.test.ts test/cli/stop.test.ts}

log() { printf '\n== %s: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# Runs a bash command line inside the root, as root, with the environment of a fresh login.
inside() {
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  unshare --mount --pid --fork --propagation private /bin/sh -c '
    set -e
    root=$1; shift
    # The root as a mount point of its own, as / is on a real machine: else the tests that unshare a
    # mount namespace (test/scale/instances.test.ts) fail, since / cannot be made private in a chroot.
    mount --bind "$root" "$root"
    mount --rbind /dev "$root/dev"
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    exec chroot "$root" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash TERM=dumb LANG=C.UTF-8 \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/bash -c "$1"
  ' sh "$ROOT" "$1"
}

step_make() {
  if [ -f "$ROOT/etc/debian_version" ]; then
    log "root exists: $ROOT (Debian $(cat "$ROOT/etc/debian_version"))"
  else
    log "debootstrap --variant=minbase --include=ca-certificates,git,curl $SUITE $ROOT $MIRROR"
    debootstrap --variant=minbase --include=ca-certificates,git,curl "$SUITE" "$ROOT" "$MIRROR"
  fi
  # Node as the official tarball installs it under /usr/local: the binary, its headers, npm.
  local node npmdir
  node=$(readlink -f "$(command -v node)")
  npmdir=$(dirname "$(readlink -f "$(command -v npm)")")/..
  npmdir=$(cd "$npmdir" && pwd)
  log "copying Node $("$node" --version) from $node and npm $(npm --version) from $npmdir"
  mkdir -p "$ROOT/usr/local/bin" "$ROOT/usr/local/lib/node_modules" "$ROOT/usr/local/include"
  cp "$node" "$ROOT/usr/local/bin/node"
  rm -rf "$ROOT/usr/local/lib/node_modules/npm"
  cp -a "$npmdir" "$ROOT/usr/local/lib/node_modules/npm"
  ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
  ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
  local inc
  inc=$(dirname "$(dirname "$node")")/include/node
  if [ -d "$inc" ]; then rm -rf "$ROOT/usr/local/include/node" && cp -a "$inc" "$ROOT/usr/local/include/node"; fi
  # Not a newcomer's steps; this sandbox's network only. (1) It intercepts TLS: the host trusts extra CAs
  # from /usr/local/share/ca-certificates and points npm at the system bundle; the root gets the same,
  # or nothing in it could reach the npm registry. (2) github.com and nodejs.org are unreachable, so
  # better-sqlite3 cannot fetch its prebuilt binary and must compile, and node-gyp cannot fetch Node's
  # headers: like the host (nodedir=/usr), npm in the root takes them from the copied include/node.
  # A machine with direct access needs none of this (and no compiler: the prebuilt binary installs).
  mkdir -p "$ROOT/usr/local/etc"
  : >"$ROOT/usr/local/etc/npmrc"
  if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    log "network: trusting this host's extra CAs ($(ls /usr/local/share/ca-certificates)) in the root"
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    echo 'cafile=/etc/ssl/certs/ca-certificates.crt' >>"$ROOT/usr/local/etc/npmrc"
    inside 'update-ca-certificates >/dev/null'
  fi
  if ! curl -s -o /dev/null -m 10 https://nodejs.org/; then
    log "network: nodejs.org unreachable; node-gyp takes Node's headers from /usr/local/include/node"
    echo 'nodedir=/usr/local' >>"$ROOT/usr/local/etc/npmrc"
  fi
  inside 'node --version && npm --version && git --version && curl --version | head -n 1'
}

step_compiler() {
  log "apt-get install python3 make g++ (for a from-source build of better-sqlite3)"
  inside 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 make g++ >/dev/null && g++ --version | head -n 1'
}

step_clone() {
  log "git clone $REPO ($(git -C "$REPO" rev-parse --short HEAD)) into $ROOT/root/lifeline"
  rm -rf "$ROOT/root/lifeline"
  # Cloned from the host's path (the root cannot see it); the clone is what `git clone URL` gives.
  git clone -q --no-local "$REPO" "$ROOT/root/lifeline"
  git -C "$ROOT/root/lifeline" log --oneline -1
}

# Brings the clone to this checkout's HEAD, keeping node_modules (for reruns after a commit).
step_update() {
  log "updating the clone to $(git -C "$REPO" rev-parse --short HEAD)"
  git -C "$ROOT/root/lifeline" fetch -q "$REPO" HEAD
  git -C "$ROOT/root/lifeline" reset -q --hard FETCH_HEAD
  git -C "$ROOT/root/lifeline" log --oneline -1
}

step_install() {
  log "npm install"
  inside 'cd /root/lifeline && time npm install'
}

step_pretest() {
  log "npm run pretest"
  inside 'cd /root/lifeline && time npm run pretest && ls -d /usr/lib/postgresql/*/bin && ls -l /usr/bin/chromium && ansible-playbook --version | head -n 1'
}

step_start() {
  log "npm start, /v1/health, SIGTERM"
  inside '
    cd /root/lifeline
    npm start >/tmp/start.log 2>&1 & pid=$!
    for i in $(seq 1 120); do curl -sf http://127.0.0.1:7400/v1/health && break; sleep 1; done; echo
    curl -sf http://127.0.0.1:7400/v1/health >/dev/null || { cat /tmp/start.log; exit 1; }
    kill -TERM $pid; wait $pid || true
    sleep 2
    if ps_out=$(grep -l "src/cli/[m]ain.ts" /proc/[0-9]*/cmdline 2>/dev/null); then echo "still running: $ps_out"; exit 1; fi
    echo "stopped: no server process left"
  '
}

# The README's "Scaling out" blocks as root (runuser for sudo -u postgres), after pretest installed
# postgresql: a role and database on Debian's cluster, two instances on it, then SIGTERM to both.
step_scale() {
  log "README Scaling out"
  inside '
    set -e
    cd /root/lifeline
    pg_ctlcluster 15 main status >/dev/null 2>&1 || pg_ctlcluster 15 main start
    cd / # psql as postgres cannot enter /root
    runuser -u postgres -- psql -qc "DROP DATABASE IF EXISTS lifeline" -c "DROP ROLE IF EXISTS lifeline"
    runuser -u postgres -- psql -c "CREATE ROLE lifeline LOGIN PASSWORD '"'"'lifeline'"'"'"
    runuser -u postgres -- createdb --owner lifeline lifeline
    cd /root/lifeline
    rm -rf data-a data-b
    DB=postgres://lifeline:lifeline@localhost/lifeline
    LIFELINE_DATA_DIR=./data-a npx lifeline serve --config examples/lifeline.yaml --db $DB --port 7400 >/tmp/a.log 2>&1 &
    a=$!
    LIFELINE_DATA_DIR=./data-b npx lifeline serve --config examples/lifeline.yaml --db $DB --port 7401 >/tmp/b.log 2>&1 &
    b=$!
    for port in 7400 7401; do
      until curl -sf localhost:$port/v1/health/ready >/dev/null; do sleep 1; done
    done
    curl -s localhost:7401/v1/instances; echo
    curl -s -X POST localhost:7400/v1/deployments -H "content-type: application/json" -d "{\"name\":\"demo-9\",\"plan\":\"demo\"}"; echo
    curl -s localhost:7401/v1/deployments/demo-9; echo
    kill $a $b; wait $a $b || true
    sleep 3
    left=""
    for f in /proc/[0-9]*/comm; do   # node or npm processes still serving (this bash script is no server)
      p=${f#/proc/}; p=${p%/comm}
      case "$(cat "$f" 2>/dev/null)" in node | npm*) tr "\0" " " <"/proc/$p/cmdline" | grep -q "lifeline serve" && left="$left $p" ;; esac
    done
    if [ -n "$left" ]; then echo "servers still running:$left"; exit 1; fi
    echo "both stopped"; git status --short
  '
}

step_tests() {
  log "npx vitest run $TESTS"
  inside "cd /root/lifeline && time npx vitest run $TESTS"
}

step_test() {
  log "npm test"
  inside 'cd /root/lifeline && time npm test'
}

step_shell() {
  inside 'cd /root/lifeline 2>/dev/null; exec bash -i'
}

# One compound command ending in exit: bash parses it whole before running it, so editing this file while
# a long step runs cannot make the rest of the run read shifted bytes.
{
  for s in "$@"; do
    case "$s" in
      make | compiler | clone | update | install | pretest | start | scale | tests | test | shell) "step_$s" ;;
      *) echo "fresh-root.sh: unknown step: $s" >&2; exit 64 ;;
    esac
  done
  exit 0
}
