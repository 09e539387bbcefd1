#!/usr/bin/env bash
# The zmanager-server program: the maths client against it with the maths plugin, the built-in
# types, --help, the refusals of bad configuration, the environment variables, the same-host
# transport (--local-address), and both ways of stopping it.
source "$(dirname "$0")/lib.sh"
server=$1/server/app/zmanager-server
plugin=$1/examples/maths/libmaths_plugin.so
client=$1/examples/maths/maths_client
interop=$(cd "$(dirname "$0")/../interop" && pwd)
unset ZMANAGER_BIND ZMANAGER_LOCAL_ADDRESS ZMANAGER_AUTHKEY ZMANAGER_AUTHKEY_FILE ZMANAGER_PLUGINS \
  ZMANAGER_SESSION_TTL ZMANAGER_HEARTBEAT ZMANAGER_LOG_LEVEL ZMANAGER_CURVE_SECRET_KEY_FILE

work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
key="server-test-$$"
printf '%s\n' "$key" >"$work/key"  # the trailing newline is not part of the key

# refused "MESSAGE PART" ARGS...: the server exits 2 at once with one line on stderr naming it.
refused() {
  local expected=$1; shift
  local status=0
  timeout 30 "$server" "$@" >"$work/out" 2>"$work/err" || status=$?
  local err; err=$(<"$work/err")
  [[ $status -eq 2 ]] || fail "'$*' exited with $status, expected 2 (stderr: $err)"
  [[ "$err" == *"$expected"* ]] || fail "'$*' said '$err', expected '$expected'"
  [[ $(wc -l <"$work/err") -eq 1 ]] || fail "'$*' wrote more than one line: $err"
  [[ ! -s "$work/out" ]] || fail "'$*' printed '$(<"$work/out")'"
}

# stopped NAME: the server NAME exits within 30 s, with status 0.
stopped() {
  local pid_var="${1}_pid"
  local pid=${!pid_var}
  timeout 30 tail --pid="$pid" -f /dev/null || fail "server $1 did not exit"
  wait "$pid" || fail "server $1 exited with $?"
}

help=$(timeout 30 "$server" --help) || fail "--help exited with $?"
for word in --bind --local-address --authkey-file --authkey --plugin --session-ttl --heartbeat \
  --log-level --curve-secret-key-file --help ZMANAGER_BIND ZMANAGER_LOCAL_ADDRESS \
  ZMANAGER_AUTHKEY_FILE ZMANAGER_AUTHKEY ZMANAGER_PLUGINS ZMANAGER_SESSION_TTL ZMANAGER_HEARTBEAT \
  ZMANAGER_LOG_LEVEL ZMANAGER_CURVE_SECRET_KEY_FILE; do
  [[ "$help" == *"$word"* ]] || fail "--help does not mention $word"
done

at=(--bind tcp://127.0.0.1:0)
refused "unknown flag '--bogus'" "${at[@]}" --authkey-file "$work/key" --bogus
refused "no authkey" "${at[@]}"
refused "--authkey-file: cannot read '$work/missing'" "${at[@]}" --authkey-file "$work/missing"
refused "--session-ttl: not a duration: 'soon'" "${at[@]}" --authkey "$key" --session-ttl soon
refused "--heartbeat: must be at least 1ms" "${at[@]}" --authkey "$key" --heartbeat 0s
refused "--log-level: not a log level: 'loud'" "${at[@]}" --authkey "$key" --log-level loud
refused "--session-ttl needs a value" "${at[@]}" --authkey "$key" --session-ttl
refused "plugin '$work/missing.so': cannot load" "${at[@]}" --authkey "$key" --plugin "$work/missing.so"
refused "plugin 'libm.so.6': not a zmanager plugin" "${at[@]}" --authkey "$key" --plugin libm.so.6
refused "CurveZMQ encryption is not implemented" "${at[@]}" --authkey "$key" \
  --curve-secret-key-file "$work/key"
refused "cannot listen on 'tcp://127.0.0.1:port'" --bind tcp://127.0.0.1:port --authkey "$key"
ZMANAGER_HEARTBEAT=fast refused "ZMANAGER_HEARTBEAT: not a duration: 'fast'" "${at[@]}" \
  --authkey "$key"
ZMANAGER_PLUGINS="$plugin:libm.so.6" refused "plugin 'libm.so.6': not a zmanager plugin" \
  "${at[@]}" --authkey "$key"
refused "--local-address: not a unix:// address: 'tcp://x'" "${at[@]}" --authkey "$key" \
  --local-address tcp://x
refused "--local-address is empty" "${at[@]}" --authkey "$key" --local-address ""
ZMANAGER_LOCAL_ADDRESS=tcp://x refused "ZMANAGER_LOCAL_ADDRESS: not a unix:// address: 'tcp://x'" \
  "${at[@]}" --authkey "$key"
refused "--local-address and --bind are both unix:// addresses" --bind "unix://@zm-bind-$$" \
  --authkey "$key" --local-address "unix://@zm-local-$$"

# Flags: the maths client against the plugin's Maths, and the built-in types from Python.
start_server flags "$server" "${at[@]}" --authkey-file "$work/key" --plugin "$plugin" \
  --session-ttl 5s --heartbeat 500ms --log-level warn
pids+=("$flags_pid")
expect_output $'7\n56\n5050' "$client" --address "$flags_address" --authkey "$key"
expect_output "built-ins: ok" timeout 60 /usr/bin/python3 - "$flags_address" "$key" "$interop" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from python_client import Client

c = Client(sys.argv[1], sys.argv[2])
served = set(c.call(0, "describe")["types"])
expected = {"Maths", "dict", "list", "Queue", "LifoQueue", "PriorityQueue", "JoinableQueue",
            "Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition", "Event", "Barrier",
            "Value", "Array", "Namespace"}
assert expected <= served, expected - served
d = c.call(0, "create", "dict", [{"a": 1}])
c.call(d.object_id, "setitem", "b", 2)
assert c.call(d.object_id, "getitem", "b") == 2
q = c.call(0, "create", "Queue", [0])
c.call(q.object_id, "put", "job", True, None)
assert c.call(q.object_id, "get", True, None) == "job"
c.close()
print("built-ins: ok")
PY
timeout 30 "$client" --address "$flags_address" --authkey "$key" --shutdown ||
  fail "the shutdown request failed"
stopped flags

# The same-host transport beside TCP, on an abstract socket (no file to clean up): the first
# line is still the TCP address, clients call through either, --log-level info logs the socket
# (stderr goes to a file: `exec` keeps the server's pid), and a shutdown arrives through it.
socket="unix://@zmanager-server-test-$$"
start_server local bash -c 'exec "$@" 2>"$0"' "$work/local.err" "$server" "${at[@]}" \
  --local-address "$socket" --authkey-file "$work/key" --plugin "$plugin" --log-level info
pids+=("$local_pid")
[[ "$local_address" == tcp://127.0.0.1:* ]] ||
  fail "the first line was '$local_address', expected the TCP address"
expect_output $'7\n56\n5050' "$client" --address "$socket" --authkey "$key"
expect_output $'7\n56\n5050' "$client" --address "$local_address" --authkey "$key"
grep -qF "also listening on $socket" "$work/local.err" ||
  fail "the socket is not logged: $(<"$work/local.err")"
timeout 30 "$client" --address "$socket" --authkey "$key" --shutdown ||
  fail "the shutdown request through $socket failed"
stopped local

# The environment alone, with a flag beating its variable (the bad ZMANAGER_SESSION_TTL is not
# read); SIGTERM stops it.
ZMANAGER_BIND=tcp://127.0.0.1:0 ZMANAGER_AUTHKEY_FILE="$work/key" ZMANAGER_PLUGINS="$plugin" \
  ZMANAGER_LOCAL_ADDRESS="$socket-env" ZMANAGER_SESSION_TTL=soon start_server env "$server" \
  --session-ttl 5s
pids+=("$env_pid")
expect_output $'7\n56\n5050' "$client" --address "$env_address" --authkey "$key"
expect_output $'7\n56\n5050' "$client" --address "$socket-env" --authkey "$key"
kill -TERM "$env_pid"
stopped env
echo "zmanager-server: ok"
