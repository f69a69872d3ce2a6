#!/usr/bin/env bash
# Copyright The modelarts_exporter Authors
# SPDX-License-Identifier: Apache-2.0
#
# Load test: many concurrent scrapers against the exporter while faults of the
# simulator are switched on and off (make load builds both programs first).
#
#   LOAD_DURATION=60s LOAD_SCRAPERS=20 LOAD_IMAGES=50 ./scripts/load.sh
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
for bin in modelarts_exporter modelarts-simulator; do
	if [ ! -x "./$bin" ]; then
		echo "./$bin missing: run make build (or make load)" >&2
		exit 1
	fi
done
exec "$GO" run ./scripts/load ./modelarts_exporter ./modelarts-simulator
