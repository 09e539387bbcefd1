#!/usr/bin/env bash
# Runs the Python client (written from docs/protocol.md) against a zmanager server, once over
# each transport: ZeroMQ over tcp (section 1) and the same-host stream over a Unix socket in the
# abstract namespace (section 1.1).
source "$(dirname "$0")/../examples/lib.sh"
client="$(dirname "$0")/python_client.py"
key="interop-$$"
server_pid=
unix_pid=
trap 'kill $server_pid $unix_pid 2>/dev/null || true' EXIT

start_server server "$1" "$key"
timeout 60 /usr/bin/python3 "$client" "$server_address" "$key"

start_server unix "$1" "$key" "unix://@zmanager-interop-$$"
[[ "$unix_address" == unix://* ]] || fail "the unix server printed '$unix_address'"
timeout 60 /usr/bin/python3 "$client" "$unix_address" "$key"
