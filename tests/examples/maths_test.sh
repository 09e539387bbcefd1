#!/usr/bin/env bash
# The seed's maths example end to end: server and client in separate processes, and the
# one-process variant with start().
source "$(dirname "$0")/lib.sh"
bin=$1/examples/maths
export ZMANAGER_AUTHKEY="maths-test-$$"

# A bad duration is refused with a message, not a crash.
if out=$("$bin/maths_server" --address tcp://127.0.0.1:0 --session-ttl soon 2>&1); then
  fail "a server started with --session-ttl soon"
fi
[[ "$out" == *"not a duration: 'soon'"* ]] || fail "unclear error for a bad duration: $out"

start_server server "$bin/maths_server" --address tcp://127.0.0.1:0 --session-ttl 5s --heartbeat 500ms
trap 'kill $server_pid 2>/dev/null || true' EXIT
expect_output $'7\n56\n5050' "$bin/maths_client" --address "$server_address"
expect_output $'7\n56\n5050' "$bin/maths_client" --address "$server_address"
# A client with the wrong key is refused; the server keeps serving.
if timeout 30 "$bin/maths_client" --address "$server_address" --authkey wrong 2>/dev/null; then
  fail "a client with the wrong authkey was served"
fi
expect_output $'7\n56\n5050' "$bin/maths_client" --address "$server_address"
timeout 30 "$bin/maths_client" --address "$server_address" --shutdown
timeout 30 tail --pid="$server_pid" -f /dev/null || fail "the server did not exit after shutdown"
wait "$server_pid" || fail "the server exited with $?"

expect_output $'7\n56\n3' "$bin/maths_oneprocess"
echo "maths example: ok"
