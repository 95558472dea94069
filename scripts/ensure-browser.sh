#!/usr/bin/env bash
# The browser tests' tools, installed when missing: headless Chromium and its WebDriver from Debian's
# packages (Selenium drives them), and axe-core from the npm registry into .local/npm (injected into each
# page for the accessibility check). Called by the Makefile's provision target; reused when present.
set -euo pipefail

AXE_VERSION="${AXE_VERSION:?set by the Makefile}"
NPM_PREFIX="${NPM_PREFIX:?set by the Makefile}"

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "Missing ${need[*]} and no apt-get to install them: install Chromium, its chromedriver and npm." >&2
    exit 1
  fi
  echo "==> Installing ${need[*]} from Debian's packages (browser tests)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# axe-core, exact version, from the npm registry (npm checks the tarball's integrity hash).
installed="$(node -p "require('$NPM_PREFIX/node_modules/axe-core/package.json').version" 2>/dev/null || true)"
if [ "$installed" != "$AXE_VERSION" ]; then
  echo "==> axe-core $AXE_VERSION from the npm registry ($NPM_PREFIX)"
  mkdir -p "$NPM_PREFIX"
  npm install --silent --no-audit --no-fund --prefix "$NPM_PREFIX" "axe-core@$AXE_VERSION" >/dev/null
fi
