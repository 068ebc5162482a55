#!/usr/bin/env bash
# Build, train and run the optional Rasa 3.6 brain.
# Usage: scripts/rasa.sh venv|export|train|run
#   venv    build .rasa-venv with Python 3.10 (skipped when its stamp matches)
#   export  write build/rasa_project from nlu_data/
#   train   venv + export + `rasa train` (skipped when the data fingerprint matches)
#   run     train + `rasa run --enable-api` on $RASA_PORT (foreground; Ctrl-C stops it)
# Environment: PYTHON310, PYTHON (project's 3.11 python), RASA_VENV, RASA_DATA, RASA_PROJECT,
#   RASA_PORT, RASA_ACTION_URL, CALLPILOT_ACTION_TOKEN (written into endpoints.yml: give callpilot the same).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
RASA_VENV=${RASA_VENV:-.rasa-venv}
RASA_DATA=${RASA_DATA:-nlu_data}
RASA_PROJECT=${RASA_PROJECT:-build/rasa_project}
RASA_PORT=${RASA_PORT:-5005}
RASA_ACTION_URL=${RASA_ACTION_URL:-http://127.0.0.1:8080/webhook}
REQUIREMENTS=bot/rasa_brain/requirements-rasa.txt
CONSTRAINTS=bot/rasa_brain/constraints-rasa.txt
export RASA_TELEMETRY_ENABLED=false

build_venv() {
    local py310 stamp wanted
    if ! py310=$("$PYTHON" -m bot.rasa_brain.server python310); then
        echo "rasa.sh: no Python 3.10 found (set PYTHON310=/path/to/python3.10)" >&2
        return 3
    fi
    stamp="$RASA_VENV/.callpilot-stamp"
    wanted="$("$py310" -VV | head -1) $py310 $(cat "$REQUIREMENTS" "$CONSTRAINTS" | sha256sum | cut -c1-64)"
    if [ -x "$RASA_VENV/bin/rasa" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
        echo "rasa venv up to date: $RASA_VENV"
        return 0
    fi
    echo "building rasa venv $RASA_VENV with $py310 (a few minutes, ~2.7 GB)"
    local started=$SECONDS
    rm -rf "$RASA_VENV"
    "$py310" -m venv "$RASA_VENV"
    "$RASA_VENV/bin/python" -m pip install --quiet --upgrade "pip==26.3"
    "$RASA_VENV/bin/python" -m pip install --quiet -r "$REQUIREMENTS"
    "$RASA_VENV/bin/rasa" --version >/dev/null 2>&1
    echo "$wanted" > "$stamp"
    echo "rasa venv built in $((SECONDS - started))s"
}

export_project() {
    "$PYTHON" -m bot.rasa_brain.export "$RASA_PROJECT" --data "$RASA_DATA" --action-url "$RASA_ACTION_URL"
}

case "${1:-}" in
    venv) build_venv ;;
    export) export_project ;;
    train)
        build_venv
        export_project
        "$PYTHON" -m bot.rasa_brain.server train "$RASA_PROJECT" --venv "$RASA_VENV"
        ;;
    run)
        build_venv
        export_project
        exec "$PYTHON" -m bot.rasa_brain.server run "$RASA_PROJECT" --venv "$RASA_VENV" \
            --port "$RASA_PORT"
        ;;
    *)
        sed -n '2,9p' "$0" >&2
        exit 2
        ;;
esac
