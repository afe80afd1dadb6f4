#!/usr/bin/env bash
# System packages the project needs beyond Python (called by `make venv`; idempotent).
#   chromium  the headless browser the ops-page test drives (Playwright with executable_path; Playwright's
#             own browser download needs the internet, the Debian package does not)
#   openjdk-17-jre-headless  the Java runtime pyspark starts (Spark 4 needs Java 17 or 21; Debian 12 ships 17)
# Installs only what is missing, with apt-get, and only as root; otherwise it says what to install and goes on
# (the tests that need a package skip with the same hint).
set -euo pipefail

PACKAGES=(chromium openjdk-17-jre-headless)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "install_system_deps: missing system packages: ${missing[*]} (install them with apt-get as root;" \
       "the tests that need them skip)" >&2
  exit 0
fi
echo "install_system_deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
