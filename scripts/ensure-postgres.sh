#!/usr/bin/env bash
# Installs PostgreSQL's server from Debian's packages when it is missing. Only the store comparison
# (`make bench-stores`, bench/store_probe.py) needs it; it runs a private cluster of its own in a temporary
# folder (ops/devstack.py: PostgresNode), never the cluster the Debian package may create.
set -euo pipefail

compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && exit 0
command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1 && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "PostgreSQL is missing and there is no apt-get to install it: install a PostgreSQL 13+ server." >&2
  exit 1
fi
echo "==> Installing postgresql from Debian's packages (for the store comparison only)"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
