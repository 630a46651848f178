#!/usr/bin/env bash
# Installs what Admin Kiosk needs on a Debian/Ubuntu machine, once: nats-server and
# redis-server (apt), then the npm dependencies. With --test also the validators the
# deployment tests use, docker-compose (v1) and promtool (package prometheus), and the
# browser the web app's end-to-end tests drive (Debian's chromium). Cheap when everything
# is there already, so `npm start` and `npm test` run it first.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

node_major=$(node -p 'process.versions.node.split(".").map(Number).reduce((a, v, i) => i === 0 ? v * 1e6 : i === 1 ? a + v * 1e3 : a + v, 0)')
if [ "$node_major" -lt 20019000 ]; then
  say "Node.js 20.19 or newer is needed (found $(node --version))"; exit 1
fi

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
missing=()
have nats-server || missing+=(nats-server)
have redis-server || missing+=(redis-server)
if [ "${1:-}" = "--test" ]; then
  have docker-compose || missing+=(docker-compose)
  have promtool || missing+=(prometheus)
  have chromium || missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    say "please install: ${missing[*]} (apt-get install -y ${missing[*]})"; exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "please install ${missing[*]} with your package manager"; exit 1
  fi
  say "installing ${missing[*]} (apt-get)"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian may start system redis-server/prometheus services; Admin Kiosk runs its own and leaves those be.
fi

# Install when node_modules is missing or older than the lockfile, with `npm ci`: exactly what
# package-lock.json says (it lists every platform's optional packages), never rewriting it, so
# a fresh clone stays clean. After changing dependencies, run `npm install` yourself and commit
# the lockfile it writes.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)"
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
fi
