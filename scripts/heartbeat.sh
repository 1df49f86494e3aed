# Sourced by the install scripts: while a long silent command runs, say every 30 s on stderr
# that it still is, so a quiet terminal is not taken for a hang.
#   start_heartbeat "install-geth: still compiling"; long_command; stop_heartbeat
HEARTBEAT_PID=""

start_heartbeat() {
    local what="$1" started=$SECONDS
    ( while sleep 30; do echo "$what ($((SECONDS - started)) s so far)"; done ) 1>&2 &
    HEARTBEAT_PID=$!
}

stop_heartbeat() {
    if [[ -n "$HEARTBEAT_PID" ]]; then
        kill "$HEARTBEAT_PID" 2>/dev/null || true
        wait "$HEARTBEAT_PID" 2>/dev/null || true
        HEARTBEAT_PID=""
    fi
}
