#!/bin/bash
# Stop the servers started by start-peers.sh DIR. Each service runs in its own session, so
# its whole process group (daemon + login sessions it forked) is signalled, by the pid
# recorded in DIR/NAME/pid only. Safe to run twice; exits 0.
set -u

[ $# -eq 1 ] || { echo "usage: stop-peers.sh DIR" >&2; exit 2; }
DIR=$1
[ -d "$DIR" ] || exit 0

pids=""
for f in "$DIR"/*/pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    case "$pid" in '' | *[!0-9]*) continue ;; esac
    # the group id equals the pid (setsid); fall back to the single process
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    pids="$pids $pid"
    rm -f "$f"
done

# wait up to 3 s, then SIGKILL what is left
for _ in $(seq 30); do
    alive=""
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
    [ -n "$alive" ] || exit 0
    sleep 0.1
done
for pid in $alive; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done
exit 0
