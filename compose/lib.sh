# shellcheck shell=bash
# shellcheck disable=SC2034  # sets variables for the scripts that source it
# Shared by setup.sh and images.sh: where things live, and the one-line-per-step output.
# Sourced, not run.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The same defaults as pipeline/settings.py, so `faasflow up` finds what is fetched here.
STATE=${FAASFLOW_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/faasflow}
CACHE=${FAASFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/faasflow}
LOG=$STATE/setup.log
mkdir -p "$STATE" "$CACHE"

# The broker version is pinned in one place, the Maven pom; the jar cache and the image tag follow it.
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$REPO/compose/kafka/pom.xml")
KAFKA_LIBS=$CACHE/kafka/$KAFKA_VERSION/libs

# step LABEL COMMAND [ARGS...]: run one step, then print its label, outcome and time.
# The command reports its outcome by setting STATUS; a step that finds its work
# already done says "ready" and should take well under a second.
step() {
    local label=$1 start=${EPOCHREALTIME/[.,]/} elapsed # microseconds; the separator follows LC_NUMERIC
    shift
    STATUS="done"
    "$@"
    elapsed=$((${EPOCHREALTIME/[.,]/} - start))
    printf '  %-28s %3d.%ds  %s\n' "$label" $((elapsed / 1000000)) $((elapsed / 100000 % 10)) "$STATUS"
}

# quietly COMMAND [ARGS...]: keep the tools' chatter in $LOG; show its tail only on failure.
quietly() {
    echo "+ $*" >>"$LOG"
    if ! "$@" >>"$LOG" 2>&1; then
        echo "failed: $*  (last lines of $LOG follow)" >&2
        tail -n 25 "$LOG" >&2
        return 1
    fi
}

sha256() { sha256sum "$@" | cut -c1-64; }
