#!/usr/bin/env bash
# t/load/test_wsload.sh: wsload's unit test, run by "make check".
#
# Starts t/load/fakews.py (a WebSocket server that misbehaves on command)
# once per case and shows that wsload exits 0 against a server that behaves,
# and exits non-zero with a clear message on each fault: a wrong echo byte,
# a masked frame from the server (protocol error), a WebSocket closed in the
# middle of the run, and a dropped, duplicated or reordered fan-out message.
# Each case runs about a second; the fake server is stopped by its PID.
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${srcdir:-$here/../..}
wsload=${WSLOAD:-$PWD/t/load/wsload}
[[ -x $wsload ]] || wsload=$here/wsload
[[ -x $wsload ]] || { echo "test_wsload: wsload is not built" >&2; exit 99; }
fake=$srcdir/t/load/fakews.py
[[ -f $fake ]] || fake=$here/fakews.py
python=$(command -v python3 || echo /usr/bin/python3)

passed=0
failed=0
fake_pid=""
out=$(mktemp -d)

stop_fake() {
    if [[ -n $fake_pid ]]; then
        kill "$fake_pid" 2>/dev/null
        wait "$fake_pid" 2>/dev/null
        fake_pid=""
    fi
}
trap 'stop_fake; rm -rf "$out"' EXIT
trap 'exit 130' INT TERM

# start_fake FAULT: start the fake server; sets port.
start_fake() {
    local i
    "$python" "$fake" --port 0 --fault "$1" --after 20 >"$out/fake" 2>&1 &
    fake_pid=$!
    port=""
    for ((i = 0; i < 100; i++)); do
        port=$(awk '/^PORT /{print $2}' "$out/fake" 2>/dev/null)
        [[ -n $port ]] && return 0
        sleep 0.05
    done
    echo "fake server did not start:" >&2
    cat "$out/fake" >&2
    return 1
}

# check NAME FAULT WANT_RC PATTERN -- WSLOAD-ARGS...: run wsload against
# the fake server with FAULT; pass when it exits WANT_RC (0, or "fail" for
# any non-zero) and its output matches PATTERN.
check() {
    local name=$1 fault=$2 want=$3 pattern=$4 rc ok=1
    shift 5
    if ! start_fake "$fault"; then
        failed=$((failed + 1))
        echo "FAIL $name: no fake server"
        return
    fi
    # A URL argument names the fake server's port as PORT.
    local args=("${@//:PORT\//:$port/}")
    timeout 30 "$wsload" -p "$port" "${args[@]}" >"$out/stdout" 2>"$out/stderr"
    rc=$?
    stop_fake
    if [[ $want == fail ]]; then
        ((rc != 0 && rc != 124)) || ok=0
    else
        ((rc == want)) || ok=0
    fi
    grep -qE -- "$pattern" "$out/stdout" "$out/stderr" || ok=0
    if ((ok)); then
        passed=$((passed + 1))
        echo "ok   $name: exit $rc: $(grep -hE -- "$pattern" "$out/stdout" \
            "$out/stderr" | head -n 1 | cut -c1-100)"
    else
        failed=$((failed + 1))
        echo "FAIL $name: exit $rc (wanted $want, output matching /$pattern/)"
        sed 's/^/    /' "$out/stdout" "$out/stderr"
    fi
}

short=(-d 1 --timeout 5)

echo "# a server that behaves: exit 0"
check "echo, good server" none 0 'errors=0' -- -P /echo -c 8 -n 4 "${short[@]}"
check "echo 2 threads, 16 KiB" none 0 'errors=0' -- -P /echo -c 8 -t 2 -s 16384 "${short[@]}"
check "connect, good server" none 0 'handshakes_per_s=[1-9]' -- -m connect -P /echo -c 4 "${short[@]}"
check "idle, good server" none 0 'kb_per_socket=' -- -m idle -P /echo -c 100 -r 400 "${short[@]}" --pids $$
check "fanout over ws, good server" none 0 'lost=0' -- -m fanout -P /chan -c 10 -r 100 "${short[@]}"
check "fanout over POST, good server" none 0 'via=http' -- -m fanout -P /chan -c 10 -r 100 "${short[@]}" --publish-url "http://127.0.0.1:PORT/chan"

echo "# a server that misbehaves: exit 1 and say what went wrong"
check "wrong echo byte" byte fail 'FAIL: .*echo payload differs' -- -P /echo -c 4 "${short[@]}"
check "masked frame from the server" masked fail 'FAIL: .*protocol error .*1002' -- -P /echo -c 4 "${short[@]}"
check "WebSocket closed mid-run" close fail 'FAIL: .*closed the WebSocket \(code 1011\)' -- -P /echo -c 4 "${short[@]}"
check "fan-out message dropped" drop fail 'FAIL: lost: 1 fan-out' -- -m fanout -P /chan -c 5 -r 100 "${short[@]}"
check "fan-out message duplicated" dup fail 'FAIL: .*duplicate: publisher 0 seq' -- -m fanout -P /chan -c 5 -r 100 "${short[@]}"
check "fan-out messages reordered" reorder fail 'FAIL: .*reordered: publisher 0 seq' -- -m fanout -P /chan -c 5 -r 100 "${short[@]}"
check "target outside 127.0.0.x refused" none fail 'only 127.0.0.x' -- -H 10.1.2.3 -P /echo -c 1 "${short[@]}"

echo "$passed passed, $failed failed"
((failed == 0))
