#!/usr/bin/env bash
# Installs the toolchains the provisioning needs when a fresh machine lacks them, from Debian's packages:
# Java 17 + Maven (Kafka jars), Go (FerretDB build), Python's venv module (Debian ships it apart from
# python3), Prometheus with promtool (`make run` scrapes the services with it; `make test` checks the
# alert rules with promtool) and Alertmanager.
set -euo pipefail

need=()
${PYTHON:-python3} -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v go >/dev/null 2>&1 || need+=(golang-go)
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing tools (${need[*]}) and no apt-get to install them: install Java 17, Maven, Go 1.24+," \
       "python3-venv, Prometheus 2.x (with promtool) and Alertmanager." >&2
  exit 1
fi
echo "==> Installing ${need[*]} from Debian's packages"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
# The packages' own services are not wanted: `make run` starts Prometheus and Alertmanager itself.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
