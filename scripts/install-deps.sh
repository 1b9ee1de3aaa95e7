#!/usr/bin/env bash
# Installs what building and testing broadcast_engine needs on Debian 12.
# Idempotent: only missing packages are installed.
set -euo pipefail

PKGS=(build-essential pkg-config postgresql-15 postgresql-server-dev-15 postgresql-15-cron
	  postgresql-15-pgtap libpq-dev libcurl4-openssl-dev libjson-c-dev libssl-dev libipc-run-perl
	  python3 python3-psycopg2 python3-aiosmtpd openssl curl valgrind clang libclang-rt-14-dev
	  debhelper postgresql-server-dev-all dpkg-dev fakeroot git
	  libmicrohttpd-dev chromium prometheus pgbouncer postfix swaks)
# libmicrohttpd-dev: the HTTP edge (src/edge/); chromium: its browser test; prometheus:
# promtool, which checks the edge's /metrics (test/integration/test_edge.py); pgbouncer:
# the API through a transaction pooler (test/integration/test_pgbouncer.py); postfix, swaks:
# real DSNs to VERP addresses (test/integration/test_postfix.py)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from another repository (with npm bundled): only add Debian's when absent
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# the tests run their own Postfix instances (postfix -c DIR): the system one stays off
if command -v postfix >/dev/null && [ -d /etc/postfix ]; then
	postfix stop >/dev/null 2>&1 || true
	command -v systemctl >/dev/null && systemctl disable --now postfix >/dev/null 2>&1 || true
fi
# the Debian package starts a cluster on 5432 that the tests do not use
if [ -d /etc/postgresql/15/main ] && command -v pg_ctlcluster >/dev/null; then
	pg_ctlcluster 15 main stop >/dev/null 2>&1 || true
fi
