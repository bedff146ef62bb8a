#!/usr/bin/env bash
# Records the browser-ice fixture (testdata/captures/browser-ice): two real
# browser calls from dave (headless Chromium behind router-w) to bob, who
# registers through the SBC — the first under router-w's default NAT (the
# browser's srflx candidate, its checks straight to the SBC's gateway),
# the second with ICE policy relay under symmetric NAT (TURN: Allocate,
# CreatePermission, ChannelBind, the checks relayed, ChannelData). Then
# every media flow is cut to its first 10 packets at each capture point
# (SIP and STUN kept whole) to keep the fixture small.
#
#   sudo testdata/captures/browser-ice/record.sh   # from the repository root
#
# It takes the host-wide lab lock itself and always brings the lab down.
# Needs root, Docker, Go, chromium and tshark. Kept: router-w and the SBC
# (its core side has the SIP the proxy saw, its internet side the access
# leg to router-b): the fixture is about the browser's side.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=testdata/captures/browser-ice
bin=$(mktemp -d)/siplab
go build -o "$bin" ./cmd/siplab
export SIPLAB="$bin"
raw=$(mktemp -d)
export RAW="$raw"

flock /tmp/siplab-lab.lock bash -euo pipefail -c '
s() { echo "+ siplab $*" >&2; "$SIPLAB" "$@"; }
trap "\"\$SIPLAB\" down >/dev/null 2>&1 || true" EXIT
"$SIPLAB" down >/dev/null 2>&1 || true
rm -f captures/*.pcapng*
s up
s set bob proxy 203.0.113.5:5060; s exec bob unregister; s exec bob register -timeout 30s
sleep 2
s webphone call dave bob -hold 8s
sleep 4
s set router-w preset symmetric
s webphone call dave bob -policy relay -hold 6s
sleep 4
cp captures/router-w.pcapng captures/sbc.pcapng "$RAW"/
'

# Trim: SIP and STUN stay, and what is neither UDP nor TCP (ICMP); the
# WSS leg (TCP, TLS: nothing a ladder reads) goes; of each other UDP flow
# (RTP, SRTP, ChannelData, DTLS) at each capture point the first 10
# packets stay.
rm -f "$out"/*.pcapng
for f in "$raw"/*.pcapng; do
	keep=$(tshark -r "$f" -T fields -E separator=/t \
		-e frame.number -e frame.interface_name -e ip.src -e udp.srcport -e ip.dst -e udp.dstport -e sip.Method -e sip.Status-Code -e stun.type -e tcp.port |
		awk -F '\t' '$7 != "" || $8 != "" || $9 != "" { print $1; next }
		     $10 != "" { next }
		     $4 == "" { print $1; next }
		     { k = $2 " " $3 " " $4 " " $5 " " $6; if (++n[k] <= 10) print $1 }')
	tshark -r "$f" -Y "frame.number in {$(echo $keep | tr " " ",")}" -w "$out/$(basename "$f")"
done
ls -l "$out"
