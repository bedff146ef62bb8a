#!/usr/bin/env bash
# How fast the lab comes up and how big it is — figures, not a test.
#   1. builds the binaries and the image once (not timed),
#   2. times `siplab up -no-build` until every phone is registered
#      (target: 5 s or less),
#   3. reports the image size (target: 40 MB or less for all daemons;
#      they share one multi-call binary, bin/siplabd).
# It refuses to run over a lab that is already up, and takes its lab down.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}

if [ -n "$(docker ps -aq --filter label=com.docker.compose.project=siplab)" ]; then
  echo "lab-up: a siplab lab is already running; bring it down first (siplab down)" >&2
  exit 1
fi
cli=$(mktemp -d)/siplab
go build -o "$cli" ./cmd/siplab
trap '"$cli" down >/dev/null 2>&1 || true' EXIT

echo "== building binaries and image (not timed)"
"$cli" up >/dev/null
"$cli" down >/dev/null

for i in $(seq 1 "$runs"); do
  start=$(date +%s.%N)
  "$cli" up -no-build >/dev/null
  end=$(date +%s.%N)
  awk -v i="$i" -v s="$start" -v e="$end" 'BEGIN { printf "run %d: up to all phones registered in %.2f s\n", i, e - s }'
  "$cli" down >/dev/null
done

size=$(docker image inspect siplab:latest --format '{{.Size}}')
# bin/ holds one binary, siplabd, and a symlink per daemon (scripts/build-bins.sh).
links=$(find bin -maxdepth 1 -type l -printf '%f\n' | sort | tr '\n' ' ')
bin_mb=$(stat -c %s bin/siplabd | awk '{ printf "%.1f", $1 / 1e6 }')
awk -v b="$size" -v m="$bin_mb" -v d="$links" 'BEGIN { printf "image siplab:latest: %.1f MB (siplabd %s MB; daemons linked to it: %s)\n", b / 1e6, m, d }'
