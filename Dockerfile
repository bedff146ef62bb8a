# One image for every lab daemon (registrar, proxy, uaclient, natrouter, b2bua):
# one static multi-call binary /siplabd on FROM scratch, no shell, and a
# symlink /<daemon> -> siplabd per name in lab-nets/daemons; siplabd runs the
# daemon its program name names, so `/uaclient status` works as before.
#
# Targets (docker-compose.yml picks one with LAB_TARGET):
#   prebuilt  (default) copies binaries compiled on the host into bin/ by
#             scripts/build-bins.sh. Needs no registry: nothing is pulled.
#   source    compiles inside a golang image. For classroom machines with
#             Compose v2/BuildKit and internet access but no Go toolchain.
#
# `prebuilt` must stay the FIRST stage: the legacy builder (docker-compose
# 1.29, no BuildKit) builds every stage before the target, so a golang stage
# above it would make the offline build try to pull golang.

FROM scratch AS prebuilt
# lab-nets/image/ is always there, so this COPY also succeeds when bin/ does
# not exist: a legacy-builder build of the `source` target (which still runs
# this stage) works on a machine that never compiled on the host. The price:
# a prebuilt build without scripts/build-bins.sh gives an image without
# daemons, and `up` then fails with "exec /natrouter: no such file".
# COPY of a directory keeps the symlinks inside it (bin/proxy -> siplabd stays
# a link: verified with docker-compose 1.29's legacy builder).
COPY lab-nets/image/ bin* /

# ---- classroom build: compiles from source (pulls golang) ----
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN mkdir -p /out && \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/siplabd ./cmd/siplabd && \
    for d in $(grep -v '^#' lab-nets/daemons | tr -d ' \t'); do ln -s siplabd "/out/$d"; done

FROM scratch AS source
COPY --from=build /out/ /
