#!/usr/bin/env bash
# Gets every image of docker-compose.yml built, for the container tests (tests/containers):
# a Docker engine (scripts/provision-docker.sh), the base images (upstream ones where a registry
# answers, else scripts/offline-images.sh's), then `compose build`.
# Writes .ci-cache/containers.env (the variables the tests pass to compose) and, last,
# .ci-cache/containers.done or .ci-cache/containers.failed; the log is .ci-cache/containers.log.
# scripts/test starts it in the background, so the images build while the other tests run.
set -uo pipefail
cd "$(dirname "$0")/.."
cache=.ci-cache
mkdir -p "$cache"
rm -f "$cache/containers.done" "$cache/containers.failed"
exec >"$cache/containers.log" 2>&1

build() {
  set -e
  start=$(date +%s)
  ./scripts/provision-docker.sh
  if docker image inspect python:3.12-slim >/dev/null 2>&1 \
     || timeout 60 docker pull -q python:3.12-slim >/dev/null 2>&1; then
    : >"$cache/containers.env"  # a registry answers: the upstream images
  else
    ./scripts/offline-images.sh
    cp .env.offline "$cache/containers.env"
  fi
  set -a
  # shellcheck disable=SC1091
  . "$cache/containers.env"
  set +a
  if docker compose version >/dev/null 2>&1; then
    docker compose --profile tools build
  else
    docker-compose --profile tools build
  fi
  echo "containers-build: ready in $(($(date +%s) - start)) s"
}

if (build); then
  touch "$cache/containers.done"
else
  echo "containers-build: FAILED"
  touch "$cache/containers.failed"
  exit 1
fi
