#!/usr/bin/env bash
# Installs the toolchains the provisioning needs when a fresh machine lacks them:
# Java 17 + Maven (Kafka jars), Go (FerretDB build) and Python's venv module (Debian ships it apart from
# python3), from Debian's packages.
set -euo pipefail

need=()
${PYTHON:-python3} -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing tools (${need[*]}) and no apt-get to install them: install Java 17, Maven, Go 1.24+ and python3-venv." >&2
  exit 1
fi
echo "==> Installing ${need[*]} from Debian's packages"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
