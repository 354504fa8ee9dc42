#!/usr/bin/env bash
# The hello-world, through the whole pipeline: a webhook delivery becomes a Kafka event,
# the starter matches it to the subscribed `hello` function, the executor runs it in a
# container, and the Result lands in the compacted results log, which this prints from.
# Safe to run again: it reuses the function, webhook and subscription it made before.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
faasflow=.venv/bin/faasflow
name=hello

$faasflow fn deploy "$name" --image faasflow/hello:latest
hook=$($faasflow webhook list --json | python3 -c \
    "import json, sys; print(next((h['id'] for h in json.load(sys.stdin) if h['name'] == '$name'), ''))")
if [[ -z $hook ]]; then
    hook=$($faasflow webhook create "$name" --source "$name" --json |
        python3 -c "import json, sys; print(json.load(sys.stdin)['id'])")
fi
$faasflow subscribe "$name" "$name" >/dev/null
echo "webhook: POST /hooks/$hook"
$faasflow webhook send "$hook" --data "${1:-faasflow}" --wait 60
url=$($faasflow status --json | python3 -c "import json, sys; print(json.load(sys.stdin)['gateway'])")
echo "dashboard: $url/ui/  (sign in with the token \`$faasflow status\` prints)"
