#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running agent, as root (or with sudo):
#   bash scripts/run.sh [vmscope run options...]   (default: print line protocol to stdout)
# Installs and builds only what the agent needs; scripts/test.sh adds the tests.
set -euo pipefail
here="$(dirname "$0")"
source "$here/as-root.sh"
bash "$here/install-deps.sh"
bash "$here/setup-kernel.sh"
bash "$here/build.sh"
exec "$here/../build/vmscope" run "$@"
