#!/usr/bin/env bash
# Builds stand-ins for the upstream base images from Debian's packages, for machines that reach
# Debian and PyPI (or mirrors of them) but no image registry, and writes .env.offline:
#   docker compose --env-file .env.offline up --build
# Idempotent: images that already exist are reused. Needs root (debootstrap) and a Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=bookworm
PYTHON_IMAGE=shopstream-offline/python:$SUITE
POSTGRES_IMAGE=shopstream-offline/postgres:$SUITE
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

exists() { docker image inspect "$1" >/dev/null 2>&1; }

if ! exists "$PYTHON_IMAGE"; then
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  echo "offline-images: debootstrap $SUITE into $root ..."
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    "$SUITE" "$root" "$MIRROR" >/dev/null
  # The host's CA bundle: a TLS-inspecting proxy or a private mirror is trusted inside too.
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  # pip reads the index from the build's environment or the host's settings (a mirror), never a local path.
  index=$(pip config get global.index-url 2>/dev/null || true)
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n%s' "${index:+index-url = $index
}" >"$root/etc/pip.conf"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import --change 'ENV LANG=C.UTF-8' - "$PYTHON_IMAGE" >/dev/null
  rm -rf "$root"
  trap - EXIT
fi

if ! exists "$POSTGRES_IMAGE"; then
  echo "offline-images: building $POSTGRES_IMAGE ..."
  docker build --quiet --network host --build-arg "BASE_IMAGE=$PYTHON_IMAGE" -t "$POSTGRES_IMAGE" \
    docker/offline-postgres >/dev/null
fi

printf 'PYTHON_IMAGE=%s\nPOSTGRES_IMAGE=%s\n' "$PYTHON_IMAGE" "$POSTGRES_IMAGE" >.env.offline
echo "offline-images: ready ($PYTHON_IMAGE, $POSTGRES_IMAGE); wrote .env.offline"
