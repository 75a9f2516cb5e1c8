#!/bin/sh
# Entry point of the RabbitMQ container (docker-compose.yml): renders the Werkplaats definitions, then
# runs the given command (the image's own entry point). definitions.json holds the whole topology, one
# broker user per service, allowed to configure and publish to its own exchange and to read its own
# queues only, and the administrator of the management UI; `python -m werkplaats_shared.topology`
# generates it and werkplaats.conf makes RabbitMQ import the rendered copy at every boot.
#
# The template's ${NAME} placeholders are filled in from the environment: RABBITMQ_DEFAULT_USER,
# RABBITMQ_DEFAULT_PASS, INTAKE_BROKER_PASSWORD, MATCHING_BROKER_PASSWORD and SCHEDULING_BROKER_PASSWORD,
# each also as NAME_FILE naming a file that holds the value (a Docker secret). Values may hold letters,
# digits and . _ ~ - only: they go unescaped into JSON here and into the services' amqp:// URLs.
set -eu

template="${DEFINITIONS_TEMPLATE:-/etc/werkplaats/definitions.json}"
output="${DEFINITIONS_FILE:-/etc/rabbitmq/werkplaats-definitions.json}"

substitutions=""
for name in RABBITMQ_DEFAULT_USER RABBITMQ_DEFAULT_PASS \
        INTAKE_BROKER_PASSWORD MATCHING_BROKER_PASSWORD SCHEDULING_BROKER_PASSWORD; do
    eval "value=\${$name:-}; file=\${${name}_FILE:-}"
    if [ -n "$file" ]; then
        if [ ! -r "$file" ]; then
            echo "entrypoint: ${name}_FILE names $file, which cannot be read" >&2
            exit 1
        fi
        value=$(cat "$file")
    fi
    if [ -z "$value" ]; then
        echo "entrypoint: set $name (or ${name}_FILE)" >&2
        exit 1
    fi
    case "$value" in
        *[!A-Za-z0-9._~-]*)
            echo "entrypoint: $name may hold letters, digits and . _ ~ - only" >&2
            exit 1 ;;
    esac
    substitutions="${substitutions}s|\${$name}|$value|g;"
done

umask 077
sed "$substitutions" "$template" > "$output.tmp"
if grep -q '\${' "$output.tmp"; then
    rm -f "$output.tmp"
    echo "entrypoint: $template has a placeholder this script does not fill in" >&2
    exit 1
fi
mv "$output.tmp" "$output"
if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then
    chown rabbitmq "$output"  # the server runs as rabbitmq
fi

exec "$@"
