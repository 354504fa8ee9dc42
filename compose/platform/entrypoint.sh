#!/bin/sh
# The platform image's entrypoint; its first argument is the role:
#   broker            the Kafka broker as faasflow/kafka runs it (KAFKA_* environment)
#   gateway, worker   and any other faasflow command: python -m pipeline ARGS
#   python..., sh..., /path...   run as given (python -c, a shell for a look around)
# Every branch execs, so tini's signals reach the role's process, not a shell.
set -eu
case "${1:-}" in
    broker)
        shift
        exec python3 /opt/faasflow/broker.py --jars /opt/kafka/libs --data /var/lib/kafka "$@"
        ;;
    python | python3 | sh | bash | /*) exec "$@" ;;
    *) exec python -m pipeline "$@" ;;
esac
