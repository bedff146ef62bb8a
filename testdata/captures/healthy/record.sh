#!/usr/bin/env bash
# Records the healthy-lab fixture (testdata/captures/healthy): a fresh lab at
# its defaults, every kind of call the lab offers, then keep-alives, the SBC's
# and the carrier's OPTIONS pings left running until 10+ minutes of lab time
# have passed. `siplab doctor -dir testdata/captures/healthy` must give 0
# errors and 0 warnings on it (doctor/healthy_test.go).
#
#   testdata/captures/healthy/record.sh          # from the repository root
#
# It takes the host-wide lab lock itself and always brings the lab down.
# Needs Docker, Go and tshark (RTP is trimmed to keep the fixture small).
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=testdata/captures/healthy
bin=$(mktemp -d)/siplab
go build -o "$bin" ./cmd/siplab
export SIPLAB="$bin"

marks=$(mktemp)
export MARKS="$marks"
flock /tmp/siplab-lab.lock bash -euo pipefail -c '
# mark: RTP from here for 2 s is kept in the fixture (see the trim below)
mark() { date +%s.%N >>"$MARKS"; }
s() { echo "+ siplab $*" >&2; "$SIPLAB" "$@"; }
x() { s exec "$@" >/dev/null; }
trap "\"\$SIPLAB\" down >/dev/null 2>&1 || true" EXIT
"$SIPLAB" down >/dev/null 2>&1 || true
rm -f captures/*.pcapng*
s up
start=$(date +%s)

# 1. a direct call, alice → bob through the proxy
mark; s call alice bob; sleep 5; s hangup alice; sleep 2

# 2. the PBX: 101 → bob, hold and resume, bob transfers alice to 102 (carol)
mark; s call alice 101; sleep 4
mark; x alice hold; sleep 3; mark; x alice resume; sleep 3
mark; x bob transfer 102; sleep 5
s hangup alice; sleep 2

# 3. voicemail: alice leaves herself a message (*97)
mark; s call alice "*97"; sleep 5; s hangup alice; sleep 2

# 4. STUN and TURN: carol writes her STUN-mapped address, bob relays via TURN
#    (carol calls alice, not bob: bob and carol share router-b, which does
#    no hairpin NAT, so their public addresses do not reach each other)
s set carol sdp_addr stun
mark; s call carol alice; sleep 5; s hangup carol; sleep 2
s set carol sdp_addr 203.0.113.3
s set bob media_relay turn
mark; s call bob alice; sleep 5; s hangup bob; sleep 2
s set bob media_relay off

# 5. through the SBC: alice and bob move to the platform edge (a phone on the
#    SBC and one straight on the proxy do not mix: the SBC offers its core
#    media address to the core), alice calls bob (four dialogs), then 101
#    (SBC, PBX, SBC)
x alice unregister; s set alice proxy 203.0.113.5:5060; x alice register -timeout 30s
x bob unregister; s set bob proxy 203.0.113.5:5060; x bob register -timeout 30s; sleep 2
mark; s call alice bob; sleep 5; s hangup alice; sleep 2
mark; s call alice 101; sleep 5; s hangup alice; sleep 2

# 6. the trunk both ways: the carrier calls a DID (+15550100 → 100 → alice),
#    bob calls out to a PSTN number (SBC, PBX, SBC, carrier)
mark; s call carrier +15550100; sleep 5; s hangup carrier; sleep 2
mark; s call bob +15551234567; sleep 5; s hangup bob; sleep 2

# 7. a scanner sweeps the SBC (blocked by its guard): scanner traffic
s attack sbc options -count 10 -rate 5 >/dev/null || true

# 8. idle: keep-alives, re-registrations, OPTIONS pings (SBC → alice,
#    SBC ↔ carrier) until 10.5 minutes of lab time have passed
while [ $(( $(date +%s) - start )) -lt 630 ]; do sleep 10; done
s exec sbc unblock 203.0.113.66 >/dev/null || true
s down
'

# Keep SIP, STUN/TURN control, TCP/TLS and ICMP whole; keep UDP media only
# in the 2 s after each mark (a call's answer, a hold, a transfer), so the
# fixture stays small but every stream is there, two-way.
filter='!udp || udp.port == 5060 || udp.port == 3478'
while read -r m; do
  filter+=" || (frame.time_epoch >= $m && frame.time_epoch <= $(echo "$m + 2" | bc))"
done <"$marks"
rm -f "$out"/*.pcapng
for f in captures/*.pcapng; do
  tshark -r "$f" -Y "$filter" -w "$out/$(basename "$f")" -F pcapng
done
du -sh "$out"
