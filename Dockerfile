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
ARG LAB_TARGET=prebuilt
COPY lab-nets/image/ /
# The daemons compiled on the host. lab-nets/target/prebuilt is a committed
# symlink to ../../bin, so in a fresh clone (no bin/) this COPY fails and the
# build stops before anything is tagged. The path is written so that the
# error names what to run: Docker cleans it lexically to
# lab-nets/target/<LAB_TARGET> (the three ".." undo the three components of
# the sentence) but prints it as written. Both builders here print
#   COPY failed: ... stat lab-nets/target/prebuilt/ needs the daemons in bin
#   - run: go run ./cmd/siplab up - ...: file does not exist
# For LAB_TARGET=source the legacy builder still runs this stage first; then
# the path resolves to lab-nets/target/source -> ../image, which always
# exists, so the source build never needs bin/.
# COPY of a directory keeps the symlinks inside it (bin/proxy -> siplabd stays
# a link: verified with the legacy builder of docker-compose 1.29 and v5).
COPY ["lab-nets/target/${LAB_TARGET}/ needs the daemons in bin - run: go run ./cmd/siplab up - or with a registry: LAB_TARGET=source docker compose up --build /../../..", "/"]

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
