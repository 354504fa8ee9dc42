#!/bin/sh
# The event on stdin, upper-cased on stdout; a line of log on stderr.
echo "handling ${FAASFLOW_INVOCATION_ID:-a call} of ${FAASFLOW_FUNCTION:-this function}" >&2
tr '[:lower:]' '[:upper:]'
