#!/usr/bin/env bash
# Sourced first by the README commands: they install packages and load BPF, so they run as
# root. As root they go on; otherwise they re-execute themselves through sudo when there
# is one (a minimal Debian has none), else stop with one line.
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "$(basename "$0"): needs root: run it as root (there is no sudo to re-run it with)" >&2
    exit 1
  fi
  exec sudo bash "$0" "$@"
fi
