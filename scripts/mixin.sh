#!/usr/bin/env bash
# Copyright The modelarts_exporter Authors
# SPDX-License-Identifier: Apache-2.0
#
# make mixin: compiles mixin/ into the files generated from it, under OUTDIR
# (default: the repository itself):
#   deploy/prometheus/alerts.yml, deploy/kubernetes/prometheusrule.yml,
#   charts/modelarts-exporter/files/prometheus-alerts.yaml and
#   deploy/grafana/modelarts-images.json.
# go test ./deploy runs it into a temporary directory and fails when a
# committed file differs. Needs jsonnet at the Makefile's JSONNET_VERSION
# (make tools), as other versions may format the output differently.
#
# Usage: scripts/mixin.sh [OUTDIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root}
JSONNET=${JSONNET:-jsonnet}

want=$(sed -n 's/^JSONNET_VERSION *:= *//p' "$root/Makefile")
if ! command -v "$JSONNET" >/dev/null 2>&1; then
  echo "mixin.sh: $JSONNET not found: run make tools and put \$(go env GOPATH)/bin on PATH" >&2
  exit 1
fi
got=$("$JSONNET" --version 2>&1 | grep -o 'v[0-9][0-9.]*' || true)
if [ "$got" != "$want" ]; then
  echo "mixin.sh: $(command -v "$JSONNET") is ${got:-of an unknown version}, want go-jsonnet $want: run make tools and put \$(go env GOPATH)/bin first on PATH" >&2
  exit 1
fi

# Rules as text (-S) with their header comments; dashboards as JSON.
"$JSONNET" -S -c -m "$out" "$root/mixin/rule_files.jsonnet"
"$JSONNET" -c -m "$out/deploy/grafana" "$root/mixin/dashboards.jsonnet"
