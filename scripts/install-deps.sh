#!/bin/sh
# Installs the Debian packages the project builds, runs and tests with.
# Idempotent: does nothing (and needs no network) when everything is present.
set -eu

PKGS="build-essential pkg-config curl ca-certificates
      libfcgi-dev libwebsockets-dev libwebsockets-evlib-uv libuv1-dev
      libhiredis-dev libcurl4-openssl-dev
      libjansson-dev libyaml-dev libssl-dev libjwt-dev
      redis-server redis-tools lighttpd apache2 nginx spawn-fcgi openssl
      wrk chromium fonts-wqy-zenhei faketime procps psmisc iproute2
      clang libclang-rt-14-dev prometheus redis-sentinel"
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages:$missing (run as root, or install them yourself)" >&2
    exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends $missing
