# Helpers for the system tests that run the built examples as separate processes.
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }

# start_server NAME CMD...: runs a server that prints its address first; sets NAME_pid, NAME_address.
start_server() {
  local name=$1; shift
  local fifo; fifo=$(mktemp -u); mkfifo "$fifo"
  "$@" >"$fifo" &
  eval "${name}_pid=$!"
  exec {fd}<"$fifo"; rm -f "$fifo"
  local address
  read -r -t 30 address <&"$fd" || fail "server '$*' printed no address"
  eval "${name}_address=$address"
}

# expect_output "EXPECTED" CMD...: runs CMD (at most 60 s) and compares its stdout.
expect_output() {
  local expected=$1; shift
  local got; got=$(timeout 60 "$@") || fail "'$*' exited with $?"
  [[ "$got" == "$expected" ]] || fail "'$*' printed '$got', expected '$expected'"
}
