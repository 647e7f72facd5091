#!/usr/bin/env bash
# Writes sql/tests/golden/NAME.expected.csv from Apache Flink 2.3 itself
# (see scripts/flink-golden.py). Installs what it needs on Debian 12: Java 17
# (openjdk-17-jre-headless) and PyFlink in a virtual environment
# (~/.cache/rivulet/flink-venv). Not part of CI: its output is committed.
# Usage: bash scripts/flink-golden.sh [NAME ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive
command -v java >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless
venv=${FLINK_VENV:-$HOME/.cache/rivulet/flink-venv}
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv" || { apt-get install -y -qq python3-venv && python3 -m venv "$venv"; }
fi
"$venv/bin/python" -c 'import pyflink' 2>/dev/null || "$venv/bin/pip" install -q 'apache-flink==2.3.0'
exec "$venv/bin/python" scripts/flink-golden.py "$@"
