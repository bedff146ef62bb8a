# Shared by the bench scripts (sourced, not run).

# bench_setup NAME ADDR...: refuses to start when one of the ip:port
# addresses is taken (another run?), makes the work directory $work, and
# stops every PID in the pids array at exit — only what the script started,
# by PID — then removes $work (kept with KEEP=1).
bench_setup() {
  local name=$1 a
  shift
  for a in "$@"; do
    if [ -n "$(ss -Hlnu "src $a" 2>/dev/null)$(ss -Hlnt "src $a" 2>/dev/null)" ]; then
      echo "$name: $a is in use (another run?)" >&2
      exit 1
    fi
  done
  work=$(mktemp -d "/tmp/siplab-$name.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "(kept $work)"; else rm -rf "$work"; fi
}

# screen_value FILE NAME: the cumulative column of a sipp statistics line.
screen_value() {
  awk -F'|' -v name="$2" '{ k = $1; gsub(/^ +| +$/, "", k) } k == name { v = $3 } END { gsub(/ /, "", v); print v }' "$1"
}

# elapsed FILE: seconds between sipp's start and its final statistics
# ("Elapsed Time" on the screen restarts at every periodic reset).
elapsed() {
  awk -F'\t' '/Start Time/ { s = $NF } /Current Time/ { c = $NF } END { if (s && c) printf "%.3f", c - s }' "$1"
}

# retransmissions FILE: the Retrans column of sipp's last scenario screen
# summed (the file holds one screen per refresh); an RTD marker ("B-RTD1")
# shifts the columns by one.
retransmissions() {
  awk '/Scenario Screen/ { r = 0 } /---------->|<----------/ { i = ($3 ~ /RTD/) ? 4 : 3; r += $(i + 1) } END { print r + 0 }' "$1"
}
