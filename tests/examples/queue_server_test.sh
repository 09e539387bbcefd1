#!/usr/bin/env bash
# The remote-queue pattern: one server sharing a queue, a producer and two consumers, each its
# own process. Every job is consumed exactly once.
source "$(dirname "$0")/lib.sh"
bin=$1/examples/queue_server
export ZMANAGER_AUTHKEY="queue-test-$$"

start_server server "$bin/queue_server" --address tcp://127.0.0.1:0
trap 'kill $server_pid 2>/dev/null || true' EXIT
out1=$(mktemp); out2=$(mktemp)
# The consumers start first and wait on the empty queue (parked on the server).
timeout 60 "$bin/queue_consumer" --address "$server_address" >"$out1" & c1=$!
timeout 60 "$bin/queue_consumer" --address "$server_address" >"$out2" & c2=$!
expect_output "produced 200 jobs" "$bin/queue_producer" --address "$server_address" 200 2
wait $c1 || fail "consumer 1 failed"
wait $c2 || fail "consumer 2 failed"
n1=$(sed -n 's/consumed \([0-9]*\) jobs/\1/p' "$out1")
n2=$(sed -n 's/consumed \([0-9]*\) jobs/\1/p' "$out2")
rm -f "$out1" "$out2"
[[ $((n1 + n2)) -eq 200 ]] || fail "consumers did $n1 + $n2 jobs, expected 200"
echo "queue example: ok ($n1 + $n2 jobs)"
