#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running agent:
#   sudo bash scripts/run.sh [vmscope run options...]   (default: print line protocol to stdout)
set -euo pipefail
here="$(dirname "$0")"
bash "$here/install-deps.sh"
bash "$here/setup-kernel.sh"
bash "$here/build.sh"
exec "$here/../build/vmscope" run "$@"
