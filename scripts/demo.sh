#!/usr/bin/env bash
# Copyright The modelarts_exporter Authors
# SPDX-License-Identifier: Apache-2.0
#
# make demo: the local API simulator with sample images in every state, and
# the exporter scraping it. No cloud account needed. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

SIM_ADDR=${SIM_ADDR:-127.0.0.1:9714}
EXPORTER_ADDR=${EXPORTER_ADDR:-127.0.0.1:9713}

for bin in modelarts_exporter modelarts-simulator; do
  [ -x "./$bin" ] || { echo "demo: ./$bin is missing; run 'make demo' (it builds first)" >&2; exit 1; }
done

./modelarts-simulator --web.listen-address="$SIM_ADDR" &
sim=$!
trap 'kill "$sim" 2>/dev/null; wait "$sim" 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 50); do
  curl -fsS "http://$SIM_ADDR/-/healthy" >/dev/null 2>&1 && break
  kill -0 "$sim" 2>/dev/null || { echo "demo: the simulator did not start (is $SIM_ADDR taken?)" >&2; exit 1; }
  sleep 0.1
done

cat <<MSG

  Simulator: http://$SIM_ADDR   (admin API: http://$SIM_ADDR/-/sim/images)
  Exporter:  http://$EXPORTER_ADDR/metrics

  Try:  curl -s http://$EXPORTER_ADDR/metrics | grep '^modelarts_image_status'
        curl -X PUT -d '{"status":"ERROR"}' http://$SIM_ADDR/-/sim/images/278e88d1-5b71-4766-8502-b3ba72e824d9/status

MSG
./modelarts_exporter --config.file=deploy/demo/modelarts_exporter.yml --web.listen-address="$EXPORTER_ADDR"
