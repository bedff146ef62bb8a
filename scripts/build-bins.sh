#!/usr/bin/env bash
# Compiles the lab daemons as static binaries into bin/, the build context of
# the Dockerfile's `prebuilt` stage (no registry needed).
#
#   scripts/build-bins.sh              # the lab's daemons (lab-nets/daemons)
#   scripts/build-bins.sh natrouter    # only these
#
# The host CLI cmd/siplab is left out: it drives Docker from the host and has
# no business inside the lab image.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -gt 0 ]; then
  pkgs=()
  for c in "$@"; do
    [ -d "cmd/$c" ] || { echo "build-bins: no such command: cmd/$c" >&2; exit 2; }
    pkgs+=("./cmd/$c")
  done
else
  mapfile -t pkgs < <(grep -v '^#' lab-nets/daemons | sed '/^$/d; s|^|./cmd/|')
fi
[ ${#pkgs[@]} -gt 0 ] || { echo "build-bins: no commands to build" >&2; exit 1; }

# bin/ is the prebuilt image's whole content: start empty, so nothing built
# earlier for another purpose ends up in the lab image.
rm -rf bin
mkdir -p bin
CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o bin/ "${pkgs[@]}"
echo "build-bins: built ${pkgs[*]} into bin/"
ls -l bin/
