#!/usr/bin/env bash
# Start Debian's dockerd when no Docker engine answers (CI machines and this VM have none running).
set -euo pipefail
if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "dockerd is not installed: apt-get install docker.io" >&2
  exit 1
fi
log=${DRIFTLINE_DOCKERD_LOG:-/tmp/driftline-dockerd.log}
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "dockerd did not start; last lines of $log:" >&2
tail -20 "$log" >&2
exit 1
