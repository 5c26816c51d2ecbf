#!/usr/bin/env bash
# Makes this machine ready for the test suite; `npm test` and .ci/run run it
# before vitest. Idempotent: when everything is there it prints nothing and
# takes well under a second.
#
# - Tools some tests run (Debian packages): prometheus and promtool
#   (test/integration/prometheus.test.ts), redis-sentinel, chromium (the
#   browser tests, test/browser/, drive /usr/bin/chromium), and a compose
#   client (test/unit/deploy-compose.test.ts). Missing ones are installed
#   with apt-get when running as root; otherwise this prints the command to
#   run, and the tests that need the tool fail naming it (they never skip).
# - Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (the shared
#   services the integration tests use): started when they do not answer,
#   then waited for (up to 30 s). When one cannot be started this prints the
#   command to start it and exits 1: nearly every test needs both.
set -uo pipefail

say() { printf 'prepare-test-env: %s\n' "$*" >&2; }
has() { command -v "$1" >/dev/null 2>&1; }
# The standalone client is checked by presence only: its `version` takes seconds.
has_compose() { has docker-compose || { has docker && docker compose version >/dev/null 2>&1; }; }

# The Debian package of every missing tool, once each.
missing_packages() {
  local packages=()
  { has prometheus && has promtool; } || packages+=(prometheus)
  has redis-sentinel || packages+=(redis-sentinel)
  has chromium || packages+=(chromium)
  has_compose || packages+=(docker-compose)
  printf '%s\n' "${packages[@]}"
}

mapfile -t missing < <(missing_packages | sed '/^$/d')
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && has apt-get; then
    say "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || say "apt-get update failed; trying the install anyway"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || say "apt-get install ${missing[*]} failed"
    mapfile -t missing < <(missing_packages | sed '/^$/d')
  fi
  for package in "${missing[@]}"; do
    say "$package is missing and the tests that need it will fail; install it: sudo apt-get install $package"
  done
fi

redis_answers() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
postgres_answers() { pg_isready -h 127.0.0.1 -p 5432 -q >/dev/null 2>&1; }
postgres_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1; }

started=no
if ! redis_answers && has redis-server; then
  say "starting Redis on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no >/dev/null || say "redis-server did not start"
  started=yes
fi
if ! postgres_answers && has pg_ctlcluster && [ -n "$(postgres_version)" ]; then
  say "starting PostgreSQL $(postgres_version) on 127.0.0.1:5432"
  pg_ctlcluster --skip-systemctl-redirect "$(postgres_version)" main start >/dev/null 2>&1 || say "pg_ctlcluster did not start it"
  started=yes
fi
if [ "$started" = yes ]; then
  for _ in $(seq 1 60); do
    redis_answers && postgres_answers && break
    sleep 0.5
  done
fi

status=0
if ! redis_answers; then
  say 'Redis does not answer on 127.0.0.1:6379; start it: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no'
  status=1
fi
if ! postgres_answers; then
  say "PostgreSQL does not answer on 127.0.0.1:5432; start it: pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start" \
    "(as root; the suite needs trust auth for user postgres)"
  status=1
fi
exit "$status"
