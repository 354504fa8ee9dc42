#!/usr/bin/env bash
# Build the faasflow images, each only when it is missing or its recipe changed:
#   faasflow/base:<hash>, :latest   Debian from debootstrap (nothing can be pulled on our machines)
#   faasflow/kafka:<version>        the KRaft broker (one node, or a cluster member), FROM base
#   faasflow/platform:latest        gateway, worker, broker and CLI in one image, FROM kafka
#   faasflow/lb:latest              HAProxy in front of a stack's gateways (compose/lb/), FROM base
#   faasflow/runtime-<lang>:latest  the in-container function runtimes, functions/runtime/<lang>/
#   faasflow/<name>:latest          each example function in functions/examples/<name>/
# Needs what setup.sh provides first: a running Docker daemon and the Kafka jars.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The classic builder takes FROM from the local image store without asking a registry and
# needs no buildx plugin, which Debian's docker.io does not ship. Its builds below pass
# --force-rm: without it a failed step leaves its stopped container behind.
export DOCKER_BUILDKIT=0

# debootstrap mounts /proc and /sys inside its target; an interrupted run leaves them mounted,
# and rm -rf would then reach into the host's. Unmount whatever is below, then stay on one fs.
remove_tree() {
    awk -v dir="$1/" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r mount; do umount -l "$mount"; done
    rm -rf --one-file-system "$1"
}

# Scratch space for root filesystems and build contexts, removed however the script ends.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/faasflow-images.XXXXXX")
trap 'remove_tree "$WORK"' EXIT

# The mirror apt on this machine already uses is the one known to be reachable from here.
debian_mirror() {
    local uri
    uri=$(awk '/^URIs:/ && !/security/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

import_rootfs() {
    tar -C "$1" --numeric-owner -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' - "$2"
}

build_base() {
    local tag=$1 rootfs=$WORK/base
    if [[ -z $(image_id "$tag") ]]; then
        # shellcheck source=SCRIPTDIR/base/recipe
        source "$REPO/compose/base/recipe"
        quietly debootstrap --variant="$VARIANT" --include="$INCLUDE" "$SUITE" "$rootfs" "$(debian_mirror)"
        # Trim what no container reads: apt's package lists and downloads (a later
        # `apt-get update` fetches fresh lists), man and info pages, message translations, and
        # docs except the copyright notices. 260 MB of debootstrap output becomes about 120.
        # The directories stay: postinst scripts (openjdk's update-alternatives) link into them.
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
        find "$rootfs"/usr/share/{doc,man,info,locale} ! -type d ! -name copyright -delete
        quietly import_rootfs "$rootfs" "$tag"
        remove_tree "$rootfs"
        STATUS=built
    else
        STATUS=ready
    fi
    # Everything else builds FROM :latest, so it must name the base of the current recipe.
    docker tag "$tag" faasflow/base:latest
}

build_kafka() {
    local tag=$1 recipe context=$WORK/kafka
    if [[ ! -d $KAFKA_LIBS ]]; then
        echo "no Kafka jars in $KAFKA_LIBS: run compose/setup.sh first" >&2
        return 1
    fi
    # The image is made of its Dockerfile, the broker runner, the jar set and the base below:
    # a change to any of them rebuilds it. The hash travels as a label on the image.
    recipe=$({
        cat "$REPO/compose/kafka/Dockerfile" "$REPO/pipeline/broker.py"
        ls "$KAFKA_LIBS"
        image_id faasflow/base:latest
    } | sha256)
    if [[ $(docker image inspect -f '{{ index .Config.Labels "faasflow.recipe" }}' "$tag" 2>/dev/null) == "$recipe" ]]; then
        STATUS=ready
        return
    fi
    # A context of just what the image needs, not the whole repository.
    mkdir "$context"
    cp "$REPO/compose/kafka/Dockerfile" "$REPO/pipeline/broker.py" "$context/"
    cp -r "$KAFKA_LIBS" "$context/libs"
    quietly docker build -q --force-rm --label "faasflow.recipe=$recipe" -t "$tag" "$context"
    remove_tree "$context"
    STATUS=built
}

# What the platform image runs: faasflow's own code, not the repository.
APP_PATHS=(pipeline connectors functions/runtime functions/templates)

# The platform's runtime dependencies ([project] dependencies, not the dev extras) as wheels, at
# exactly the versions of the tested venv, built on the host: a build container reaches the
# Debian mirror but not PyPI. Kept in the cache per set of pins: $WHEELS names the folder.
platform_wheels() {
    local venv=$REPO/.venv pins deps pip_version key
    if [[ ! -x $venv/bin/pip ]]; then
        echo "no venv in $venv: run compose/setup.sh first" >&2
        return 1
    fi
    pins=$("$venv/bin/pip" freeze --exclude-editable)
    deps=$("$venv/bin/python" -c 'import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
        "$REPO/pyproject.toml")
    pip_version=$("$venv/bin/python" -c 'import pip; print(pip.__version__)')
    key=$(printf '%s\n' "$pins" --- "$deps" --- "pip==$pip_version" | sha256 | cut -c1-16)
    WHEELS=$CACHE/platform/wheels/$key
    [[ -d $WHEELS ]] && return
    local partial=$WHEELS.partial
    rm -rf "$partial"
    mkdir -p "$partial"
    echo "$pins" >"$partial/constraints.txt"
    echo "$deps" >"$partial/requirements.txt"
    # pip itself too: the image has no ensurepip, and runs pip from this wheel.
    PIP_DISABLE_PIP_VERSION_CHECK=1 quietly "$venv/bin/pip" wheel --wheel-dir "$partial" \
        -c "$partial/constraints.txt" -r "$partial/requirements.txt" "pip==$pip_version"
    mv "$partial" "$WHEELS" # complete or absent: an interrupted run starts over
}

build_platform() {
    local tag=$1 recipe context=$WORK/platform
    platform_wheels
    # Made of its folder, the wheel set, the application's files and the Kafka image below.
    recipe=$({
        (cd "$REPO/compose/platform" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
        basename "$WHEELS"
        (cd "$REPO" && find "${APP_PATHS[@]}" -type f ! -name '*.pyc' -print0 | sort -z |
            xargs -0 sha256sum)
        image_id "faasflow/kafka:$KAFKA_VERSION"
    } | sha256)
    if [[ $(docker image inspect -f '{{ index .Config.Labels "faasflow.recipe" }}' "$tag" 2>/dev/null) == "$recipe" ]]; then
        STATUS=ready
        return
    fi
    mkdir -p "$context/app"
    cp "$REPO"/compose/platform/* "$context/"
    cp -r "$WHEELS" "$context/wheels"
    tar -C "$REPO" --exclude=__pycache__ --exclude='*.pyc' -c "${APP_PATHS[@]}" | tar -C "$context/app" -x
    quietly docker build -q --force-rm --build-arg "KAFKA_VERSION=$KAFKA_VERSION" \
        --label "faasflow.recipe=$recipe" -t "$tag" "$context"
    remove_tree "$context"
    STATUS=built
}

build_runtime() {
    local dir=$1 tag=$2 recipe
    # Made of its folder (Dockerfile and runtime) and the base below: a change to any of them
    # rebuilds it. The hash travels as a label on the image, as for kafka.
    recipe=$({
        (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
        image_id faasflow/base:latest
    } | sha256)
    if [[ $(docker image inspect -f '{{ index .Config.Labels "faasflow.recipe" }}' "$tag" 2>/dev/null) == "$recipe" ]]; then
        STATUS=ready
        return
    fi
    quietly docker build -q --force-rm --label "faasflow.recipe=$recipe" -t "$tag" "$dir"
    STATUS=built
}

build_function() {
    local dir=$1 tag=$2 before
    # Always handed to docker build: its layer cache makes an unchanged function a no-op.
    before=$(image_id "$tag")
    quietly docker build -q --force-rm -t "$tag" "$dir"
    if [[ $(image_id "$tag") == "$before" ]]; then STATUS=ready; else STATUS=built; fi
}

base_tag=faasflow/base:$(sha256 "$REPO/compose/base/recipe" | cut -c1-12)
step "$base_tag" build_base "$base_tag"
step "faasflow/kafka:$KAFKA_VERSION" build_kafka "faasflow/kafka:$KAFKA_VERSION"
step "faasflow/platform:latest" build_platform "faasflow/platform:latest"
step "faasflow/lb:latest" build_runtime "$REPO/compose/lb" faasflow/lb:latest
for lang in python node; do
    step "faasflow/runtime-$lang:latest" build_runtime "$REPO/functions/runtime/$lang" "faasflow/runtime-$lang:latest"
done
for dir in "$REPO"/functions/examples/*/; do
    [[ -f $dir/Dockerfile ]] || continue
    name=$(basename "$dir")
    step "faasflow/$name:latest" build_function "$dir" "faasflow/$name:latest"
done
