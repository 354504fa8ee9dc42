#!/usr/bin/env bash
# Prepare this machine to develop and test faasflow: system packages, the Docker daemon, the
# Python venv, the Kafka broker's jars and the images. Safe to re-run: every step first checks
# whether its work is already done, so a second run takes seconds. Tool output goes to
# $STATE/setup.log; the terminal gets one line per step.
#
#   FAASFLOW_STATE_DIR  run-time state and logs (default: ~/.local/state/faasflow,
#                       or $XDG_STATE_HOME/faasflow when that is set)
#   FAASFLOW_CACHE_DIR  downloads shared between checkouts (default: ~/.cache/faasflow,
#                       or $XDG_CACHE_HOME/faasflow when that is set)
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"
VENV=$REPO/.venv
NODE_TOOLS=$CACHE/node # npm packages the tests run (ganache)
: >"$LOG"

install_packages() {
    local missing=()
    { command -v docker && command -v dockerd; } >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v docker-compose >/dev/null || missing+=(docker-compose) # compose/stack.yml without Swarm
    command -v mvn >/dev/null || missing+=(maven)
    command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
    command -v curl >/dev/null || missing+=(curl)
    command -v wrk >/dev/null || missing+=(wrk) # the HTTP load generator of `make bench`
    command -v npm >/dev/null || missing+=(npm) # Debian's npm brings nodejs with it
    command -v chromium >/dev/null || missing+=(chromium) # the dashboard's browser tests (Playwright)
    # Debian splits `python3 -m venv` into its own package; ensurepip is the part it adds.
    python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
    if ((${#missing[@]} == 0)); then
        STATUS=ready
        return
    fi
    if ((EUID != 0)); then
        echo "missing ${missing[*]}: run this as root, or: sudo apt-get install ${missing[*]}" >&2
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    quietly apt-get update -q
    quietly apt-get install -y -q --no-install-recommends "${missing[@]}"
    STATUS="installed ${missing[*]}"
}

start_docker() {
    if docker info >/dev/null 2>&1; then
        STATUS=running
        return
    fi
    # No init system on the CI machines, so the daemon is started by hand, in a session of its
    # own so it outlives this script. -w keeps $! alive for as long as dockerd is.
    setsid -w dockerd >"$STATE/dockerd.log" 2>&1 </dev/null &
    local pid=$! deadline=$((SECONDS + 60))
    until docker info >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
            echo "dockerd did not come up; last lines of $STATE/dockerd.log:" >&2
            tail -n 15 "$STATE/dockerd.log" >&2
            return 1
        fi
        sleep 0.5
    done
    STATUS="started, log in $STATE/dockerd.log"
}

make_venv() {
    # The venv follows pyproject.toml: a stamp of its hash says the install is current.
    # Editable, so edits to the code itself never need a reinstall.
    local stamp=$VENV/.pyproject.sha256 want
    want=$(sha256 pyproject.toml)
    if [[ -x $VENV/bin/python && -f $stamp && $(<"$stamp") == "$want" ]]; then
        STATUS=ready
        return
    fi
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "faasflow needs Python 3.11 or newer; python3 here is $(python3 -V 2>&1)" >&2
        return 1
    fi
    [[ -x $VENV/bin/python ]] || quietly python3 -m venv "$VENV"
    PIP_DISABLE_PIP_VERSION_CHECK=1 quietly "$VENV/bin/pip" install -e '.[dev]'
    echo "$want" >"$stamp"
}

fetch_kafka_jars() {
    # The jar set follows the pom: a stamp of its hash says the folder is complete and current.
    local stamp=$KAFKA_LIBS.pom.sha256 want
    want=$(sha256 compose/kafka/pom.xml)
    if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
        STATUS=ready
        return
    fi
    rm -rf "$KAFKA_LIBS" # a changed pom must not leave jars of the old one behind
    quietly mvn -B -q -f compose/kafka/pom.xml dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS"
    echo "$want" >"$stamp"
    STATUS="$(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars"
}

install_ganache() {
    # A local Ethereum chain for the Ethereum connector's integration tests, pinned. The tests
    # run $NODE_TOOLS/node_modules/.bin/ganache (FAASFLOW_GANACHE names another one).
    local want=7.9.2 have
    have=$(node -p "require('$NODE_TOOLS/node_modules/ganache/package.json').version" 2>/dev/null || true)
    if [[ $have == "$want" && -x $NODE_TOOLS/node_modules/.bin/ganache ]]; then
        STATUS=ready
        return
    fi
    quietly npm install --prefix "$NODE_TOOLS" --no-audit --no-fund "ganache@$want"
    STATUS="installed ganache $want"
}

install_openwhisk_client() {
    # Apache OpenWhisk's JavaScript client, pinned: the OpenWhisk API's integration tests
    # drive the gateway with it (tests/integration/openwhisk_client.js).
    local want=3.21.9 have
    have=$(node -p "require('$NODE_TOOLS/node_modules/openwhisk/package.json').version" 2>/dev/null || true)
    if [[ $have == "$want" ]]; then
        STATUS=ready
        return
    fi
    quietly npm install --prefix "$NODE_TOOLS" --no-audit --no-fund "openwhisk@$want"
    STATUS="installed openwhisk $want"
}

install_ui_assets() {
    # The dashboard's and /docs' browser assets, served by the gateway itself (no CDN: faasflow
    # runs on closed networks): npm installs compose/ui's lock into the cache, and the files
    # assets.txt names are copied into pipeline/gateway/ui/vendor/ (not in git), from where the
    # platform image takes them too. A stamp of the lock and the list says the copy is current.
    local vendor=$REPO/pipeline/gateway/ui/vendor modules=$CACHE/ui want from name
    want=$(cat compose/ui/package-lock.json compose/ui/assets.txt | sha256)
    if [[ -f $vendor/.stamp && $(<"$vendor/.stamp") == "$want" ]]; then
        STATUS=ready
        return
    fi
    mkdir -p "$modules"
    cp compose/ui/package.json compose/ui/package-lock.json "$modules/"
    quietly npm ci --prefix "$modules" --no-audit --no-fund
    rm -rf "$vendor" && mkdir -p "$vendor"
    while read -r from name; do
        [[ -z $from || $from == \#* ]] && continue
        cp "$modules/node_modules/$from" "$vendor/$name"
    done <compose/ui/assets.txt
    echo "$want" >"$vendor/.stamp"
    STATUS="$(find "$vendor" -type f ! -name .stamp | wc -l) files in $vendor"
}

# Several gateway processes share one port (SO_REUSEPORT). When one of them dies, the
# connections waiting in its accept queue are reset unless the kernel hands them to a
# sibling listener; tcp_migrate_req (Linux 5.14) does that.
migrate_requests() {
    local knob=/proc/sys/net/ipv4/tcp_migrate_req
    if [[ ! -e $knob ]]; then
        STATUS="not available on this kernel (a dying gateway process resets its queue)"
    elif [[ $(cat "$knob") == 1 ]]; then
        STATUS="already on"
    else
        echo 1 >"$knob"
        STATUS="on"
    fi
}

echo "faasflow setup"
step "apt packages" install_packages
step "docker daemon" start_docker
step "python venv" make_venv
step "kafka $KAFKA_VERSION jars" fetch_kafka_jars
step "ganache (test chain)" install_ganache
step "openwhisk client (tests)" install_openwhisk_client
step "dashboard assets" install_ui_assets
step "tcp_migrate_req" migrate_requests
bash "$REPO/compose/images.sh"

cat <<SUMMARY
ready:
  venv         $VENV  (faasflow, pytest, ruff in .venv/bin)
  kafka jars   $KAFKA_LIBS
  ganache      $NODE_TOOLS/node_modules/.bin/ganache
  openwhisk    $NODE_TOOLS/node_modules/openwhisk (JS client)
  ui assets    $REPO/pipeline/gateway/ui/vendor (htmx, uPlot, Swagger UI)
  chromium     $(command -v chromium) (the browser tests' browser)
  state        $STATE
  setup log    $LOG
SUMMARY
