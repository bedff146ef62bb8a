#!/usr/bin/env bash
# Compiles the lab daemons into bin/, the build context of the Dockerfile's
# `prebuilt` stage (no registry needed): one static multi-call binary,
# bin/siplabd (cmd/siplabd), and a relative symlink bin/<daemon> -> siplabd
# for each daemon, which siplabd runs by its program name. One binary shares
# the runtime and libraries between the daemons (the image's 40 MB budget);
# the symlinks keep every command line (/uaclient status, ...) unchanged.
#
#   scripts/build-bins.sh              # the lab's daemons (lab-nets/daemons)
#   scripts/build-bins.sh natrouter    # only these symlinks (siplabd holds all)
#
# The host CLI cmd/siplab is left out: it drives Docker from the host and has
# no business inside the lab image.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t listed < <(grep -v '^#' lab-nets/daemons | sed 's/[[:space:]]//g; /^$/d')
if [ $# -gt 0 ]; then
  names=()
  for c in "$@"; do
    printf '%s\n' "${listed[@]}" | grep -qx -- "$c" ||
      { echo "build-bins: $c is not a lab daemon (lab-nets/daemons: ${listed[*]})" >&2; exit 2; }
    names+=("$c")
  done
else
  names=("${listed[@]}")
fi
[ ${#names[@]} -gt 0 ] || { echo "build-bins: no daemons to build (lab-nets/daemons is empty)" >&2; exit 1; }

# bin/ is the prebuilt image's whole content: start empty, so nothing built
# earlier for another purpose ends up in the lab image; build next to it and
# rename at the end, so a failed build never leaves a bin/ without siplabd
# (the Dockerfile's prebuilt stage refuses a missing bin/, not an empty one).
rm -rf bin.tmp
mkdir -p bin.tmp
trap 'rm -rf bin.tmp' EXIT
CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o bin.tmp/siplabd ./cmd/siplabd
# Relative links: they resolve the same in bin/ and at the image root.
for n in "${names[@]}"; do
  ln -s siplabd "bin.tmp/$n"
done
rm -rf bin
mv bin.tmp bin
echo "build-bins: built bin/siplabd, linked ${names[*]}"
ls -l bin/
