#!/usr/bin/env bash
# Copyright The modelarts_exporter Authors
# SPDX-License-Identifier: Apache-2.0
#
# Regenerates deploy/kubernetes/prometheusrule.yml from deploy/prometheus/alerts.yml,
# the one source of truth of the alerting rules. The generator is
# deploy.PrometheusRule; `go test ./deploy` (in make test and make e2e) fails
# while the generated file is out of date.
set -euo pipefail
cd "$(dirname "$0")/.."
${GO:-go} test -count=1 ./deploy -run '^TestPrometheusRuleIsGenerated$' -update
echo "wrote deploy/kubernetes/prometheusrule.yml"
