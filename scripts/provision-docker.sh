#!/usr/bin/env bash
# Makes a Docker engine and compose usable on a fresh Debian machine of this project's kind.
# A no-op where `docker info` already works (a laptop, GitHub Actions).
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "provision-docker: no Docker engine, and installing one needs root" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null \
   || ! { command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1; }; then
  echo "provision-docker: installing docker.io, docker-compose, debootstrap (apt-get)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends docker.io docker-compose debootstrap >/dev/null
fi
if ! pgrep -x dockerd >/dev/null; then
  log=/var/log/shopstream-dockerd.log
  echo "provision-docker: starting dockerd (log: $log)"
  nohup dockerd >"$log" 2>&1 &
fi
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "provision-docker: dockerd did not come up; see /var/log/shopstream-dockerd.log" >&2
exit 1
