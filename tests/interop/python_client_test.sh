#!/usr/bin/env bash
# Runs the Python client (written from docs/protocol.md) against a zmanager server.
source "$(dirname "$0")/../examples/lib.sh"
key="interop-$$"
start_server server "$1" "$key"
trap 'kill $server_pid 2>/dev/null || true' EXIT
timeout 60 /usr/bin/python3 "$(dirname "$0")/python_client.py" "$server_address" "$key"
