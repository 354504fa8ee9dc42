#!/usr/bin/env bash
# Deploy faasflow on Docker Swarm from compose/stack.yml, or remove it (`make stack`,
# `make stack-down`). Run compose/setup.sh first: it builds the images the stack runs.
#
#   scripts/stack.sh up     a Swarm when this engine is in none (a single-node one, left
#                           again by `down`), the token and signing secret (the same files
#                           `faasflow up` uses, so the CLI needs no setting), then deploy and
#                           wait until a gateway answers through the load balancer
#   scripts/stack.sh down   remove the stack, what it left (warm function containers, its
#                           volumes: the brokers' data) and the Swarm if `up` made it
#
#   FAASFLOW_STACK          the stack's name (default faasflow)
#   FAASFLOW_WORKERS        workers to start with (default 1); FAASFLOW_GATEWAYS (2);
#                           FAASFLOW_MIN_WORKERS / FAASFLOW_MAX_WORKERS the autoscaler's range
#   FAASFLOW_PUBLIC_HOST    the address Kafka clients outside the stack use (127.0.0.1)
set -euo pipefail
# shellcheck source=../compose/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../compose/lib.sh"
cd "$REPO"
STACK=${FAASFLOW_STACK:-faasflow}
export FAASFLOW_STACK=$STACK
KEPT=$STATE/stack
SWARM_MADE=$KEPT/$STACK.swarm-created # present when `up` initialised the Swarm
CLUSTER_ID=$KEPT/$STACK.kafka-cluster-id
URL=http://127.0.0.1:8080
mkdir -p "$KEPT"

swarm_state() { docker info --format '{{.Swarm.LocalNodeState}}'; }

join_swarm() {
    if [[ $(swarm_state) == active ]]; then
        STATUS="in a Swarm already"
        return
    fi
    # 127.0.0.1: a single node needs no address others can reach (README: several machines).
    quietly docker swarm init --advertise-addr 127.0.0.1
    touch "$SWARM_MADE"
    STATUS="initialised (single node)"
}

make_secrets() {
    # The token and the callback signing secret of this machine's state directory become
    # the stack's Docker secrets: `faasflow` commands here reach the stack's gateways as they
    # reach `faasflow up`'s.
    "$REPO/.venv/bin/python" - <<'PY'
from pipeline.callbacks.signing import platform_secret
from pipeline.settings import Settings

settings = Settings()
settings.auth_token(create=True)
platform_secret(settings)
PY
    [[ -s $CLUSTER_ID ]] || "$REPO/.venv/bin/python" -c \
        'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))' \
        >"$CLUSTER_ID"
    STATUS="token in $STATE/token"
}

# secret_name FILE: the Docker secret holding $STATE/FILE. Swarm cannot change a secret, so
# each content is a secret of its own, named by its digest: after a new token, `up` rolls
# the services onto a new secret (before, the deploy failed: "only updates to Labels are
# allowed").
secret_name() { echo "${STACK}_$1_$(sha256 <"$STATE/$1" | cut -c1-12)"; }

deploy() {
    local token callback
    token=$(secret_name token)
    callback=$(secret_name callback-secret)
    FAASFLOW_TOKEN_FILE=$STATE/token FAASFLOW_CALLBACK_SECRET_FILE=$STATE/callback-secret \
        FAASFLOW_TOKEN_SECRET=$token FAASFLOW_CALLBACK_SECRET=$callback \
        FAASFLOW_KAFKA_CLUSTER_ID=$(<"$CLUSTER_ID") \
        quietly docker stack deploy --prune -c compose/stack.yml "$STACK"
    # The secrets of an earlier token: the services no longer name them. One a task going
    # away still holds cannot be removed yet; `down` removes it.
    docker secret ls --filter "label=com.docker.stack.namespace=$STACK" \
        --format '{{.Name}}' | grep -vx -e "$token" -e "$callback" |
        xargs -r docker secret rm >>"$LOG" 2>&1 || true
    STATUS="stack $STACK"
}

wait_for_gateway() {
    # Three brokers elect a controller, the gateways load the registry: about a minute.
    local deadline=$((SECONDS + ${FAASFLOW_STACK_TIMEOUT_S:-300}))
    until curl -fsS -o /dev/null --max-time 2 "$URL/healthz" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            echo "no gateway answered at $URL/healthz; the services:" >&2
            docker stack ps --no-trunc "$STACK" >&2 || true
            return 1
        fi
        sleep 2
    done
    STATUS="answering at $URL"
}

up() {
    echo "faasflow stack up"
    step "docker swarm" join_swarm
    step "secrets" make_secrets
    step "deploy" deploy
    step "gateway" wait_for_gateway
    cat <<DONE
ready:
  gateway   $URL   (token: faasflow status, or $STATE/token)
  kafka     127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094 (from this machine)
  services  docker stack services $STACK
  scale     docker service scale ${STACK}_worker=3
  remove    make stack-down
DONE
}

# until_gone WHAT COMMAND...: wait (at most two minutes) until COMMAND prints nothing.
until_gone() {
    local what=$1 deadline=$((SECONDS + 120))
    shift
    while [[ -n $("$@") ]]; do
        if ((SECONDS >= deadline)); then
            echo "$what still there after two minutes" >&2
            return 1
        fi
        sleep 1
    done
}

remove_stack() {
    if [[ $(swarm_state) != active ]] || ! docker stack ls --format '{{.Name}}' | grep -qx "$STACK"; then
        STATUS="not deployed"
        return
    fi
    quietly docker stack rm "$STACK"
    until_gone "the stack's containers" docker ps -aq --filter "label=com.docker.stack.namespace=$STACK"
    until_gone "the stack's network" docker network ls -q --filter "label=com.docker.stack.namespace=$STACK"
    STATUS="removed"
}

remove_leftovers() {
    # Workers remove their warm containers when stopped; a killed one leaves them. They are
    # known by the socket volume they are bound into.
    local volume=${STACK}_warm-sockets containers
    containers=$(docker ps -aq --filter label=faasflow.mode=warm |
        xargs -r docker inspect -f '{{.Id}} {{index .Config.Labels "faasflow.sockets"}}' |
        awk -v v="/volumes/$volume/" 'index($2, v) { print $1 }')
    [[ -z $containers ]] || quietly docker rm -f $containers
    local volumes
    volumes=$(docker volume ls -q --filter "label=com.docker.stack.namespace=$STACK")
    [[ -z $volumes ]] || quietly docker volume rm $volumes
    rm -f "$CLUSTER_ID" # the brokers' data is gone: a new cluster next time
    STATUS="$(wc -w <<<"$containers") containers, $(wc -w <<<"$volumes") volumes"
}

leave_swarm() {
    if [[ ! -e $SWARM_MADE ]]; then
        STATUS="kept (it was there before)"
        return
    fi
    quietly docker swarm leave --force
    rm -f "$SWARM_MADE"
    STATUS="left"
}

down() {
    echo "faasflow stack down"
    step "stack $STACK" remove_stack
    step "leftovers" remove_leftovers
    step "docker swarm" leave_swarm
}

case ${1:-} in
up) up ;;
down) down ;;
*)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
