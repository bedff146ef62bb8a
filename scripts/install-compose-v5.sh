#!/usr/bin/env bash
# Builds Docker Compose v5 (the current line of Compose v2) from the Go module
# proxy and installs it as a Docker CLI plugin, so `docker compose` works on a
# machine whose distribution ships only docker-compose 1.29.
#
#   scripts/install-compose-v5.sh            # build (or reuse) and install
#   COMPOSE_V5_VERSION=v5.6.0 scripts/...    # another release
#
# Why a scratch module: `go install github.com/docker/compose/v5/cmd@v5.6.0`
# refuses because compose's go.mod has exclude directives; `go get` into a
# throwaway module honours them. The module cache keeps the sources, and the
# built binary is kept in $SIPLAB_CACHE, so a second run costs nothing.
#
# Installed at ${DOCKER_CONFIG:-~/.docker}/cli-plugins/docker-compose: both
# docker CLIs on these machines (the 28.x client first on PATH and the
# engine's 20.10 client) load plugins from there.
set -euo pipefail

version=${COMPOSE_V5_VERSION:-v5.6.0}
cache=${SIPLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/siplab}/compose-$version
bin=$cache/docker-compose
plugins=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins

if ! [ -x "$bin" ] || ! "$bin" version >/dev/null 2>&1; then
  command -v go >/dev/null || { echo "install-compose-v5: needs Go on PATH" >&2; exit 1; }
  echo "install-compose-v5: building compose $version from the module proxy"
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  mkdir -p "$cache"
  (
    cd "$scratch"
    go mod init x >/dev/null 2>&1
    go get "github.com/docker/compose/v5/cmd@$version"
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/docker/compose/v5/internal.Version=$version" -o "$bin.tmp" github.com/docker/compose/v5/cmd
  )
  mv "$bin.tmp" "$bin"
fi

mkdir -p "$plugins"
# Copy, not link: the plugin must survive a cleared cache.
install -m 0755 "$bin" "$plugins/docker-compose"
docker compose version
