#!/usr/bin/env bash
# Copyright The modelarts_exporter Authors
# SPDX-License-Identifier: Apache-2.0
#
# make e2e: the deploy/ artefacts proven against the real programs.
#
#  1. Static checks of the shipped files: promtool check config, check rules
#     and test rules on deploy/prometheus/; --config.check on
#     deploy/modelarts_exporter.yml;
#     go test ./deploy (files generated from mixin/ up to date,
#     every alert unit-tested firing and silent, dashboard and manifests sane);
#     systemd-analyze verify and security on the unit and kubectl kustomize on
#     deploy/kubernetes when those tools are installed.
#  2. The live stack on free loopback ports (scripts/e2e, a Go program):
#     modelarts-simulator with the sample images, modelarts_exporter, Debian's
#     prometheus with deploy/prometheus/ plus an overlay (1s intervals,
#     loopback targets, every `for:` shortened to 2s in a temporary copy of
#     alerts.yml) and prometheus-alertmanager. It checks the series against the
#     simulator's data, the alerts the sample images call for, every dashboard
#     query, an image flipped to ERROR firing in Prometheus and arriving in
#     Alertmanager and at a webhook receiver, API faults, a failed reload and
#     the exporter going down. The status page is loaded in headless Chromium
#     (DOM checked, screenshot in .e2e/status.png). /probe is scraped by two
#     more Prometheus servers, one target per project, split with hashmod,
#     through a round-robin TCP proxy in front of two exporter replicas.
#     Everything it starts is stopped, on failure too.
#
# Needs: go, prometheus, promtool, prometheus-alertmanager, chromium (Debian
# packages prometheus, prometheus-alertmanager and chromium), and the binaries
# `make build` makes.
# E2E_TIMEOUT bounds the live part (default 3m).
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
PROMETHEUS=${PROMETHEUS:-prometheus}
PROMTOOL=${PROMTOOL:-promtool}
ALERTMANAGER=${ALERTMANAGER:-prometheus-alertmanager}
CHROMIUM=${CHROMIUM:-chromium}
GO=${GO:-go}
E2E_TIMEOUT=${E2E_TIMEOUT:-3m}

missing=()
for tool in "$GO" "$PROMETHEUS" "$PROMTOOL" "$ALERTMANAGER" "$CHROMIUM"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
for bin in modelarts_exporter modelarts-simulator; do
  [ -x "./$bin" ] || missing+=("./$bin (run make build)")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "e2e: missing: ${missing[*]}" >&2
  echo "e2e: on Debian: apt-get install prometheus prometheus-alertmanager chromium; then make e2e" >&2
  exit 1
fi
echo "== versions"
"$PROMETHEUS" --version 2>&1 | head -1
"$ALERTMANAGER" --version 2>&1 | head -1
"$CHROMIUM" --version 2>&1 | tail -1
./modelarts_exporter --version 2>&1 | head -1

step() { echo; echo "== $*"; }

step "promtool check config deploy/prometheus/prometheus.yml"
"$PROMTOOL" check config deploy/prometheus/prometheus.yml
step "promtool check rules deploy/prometheus/alerts.yml"
"$PROMTOOL" check rules deploy/prometheus/alerts.yml
step "promtool test rules deploy/prometheus/alerts_test.yml"
"$PROMTOOL" test rules deploy/prometheus/alerts_test.yml
step "modelarts_exporter --config.check on the example configuration"
./modelarts_exporter --config.check --config.file=deploy/modelarts_exporter.yml
step "go test ./deploy (files generated from mixin/ up to date, alert tests complete, dashboard and manifests)"
"$GO" test -count=1 ./deploy

step "systemd unit: systemd-analyze verify and security"
if command -v systemd-analyze >/dev/null 2>&1; then
  unitdir=$(mktemp -d)
  # verify wants the binary and the credential to exist: point them at ours.
  sed -e "s#/usr/local/bin/modelarts_exporter#$PWD/modelarts_exporter#" \
      -e "s#/etc/modelarts_exporter/secret_key#$PWD/deploy/demo/demo_secret_key#" \
      deploy/systemd/modelarts_exporter.service >"$unitdir/modelarts_exporter.service"
  systemd-analyze verify "$unitdir/modelarts_exporter.service"
  # Exposure on systemd's 0-100 scale (printed as 0.0-10.0): 2.0 at most.
  systemd-analyze security --offline=true --threshold=20 "$unitdir/modelarts_exporter.service" | tail -1
  rm -rf "$unitdir"
else
  echo "systemd-analyze not installed: skipped"
fi

step "kubectl kustomize deploy/kubernetes"
if command -v kubectl >/dev/null 2>&1; then
  kubectl kustomize deploy/kubernetes | grep '^kind:' | sort | uniq -c
else
  echo "kubectl not installed: skipped (go test ./deploy checked the manifests)"
fi

step "live stack on loopback"
tmpbin=$(mktemp -d)
trap 'rm -rf "$tmpbin"' EXIT
"$GO" build -o "$tmpbin/e2e" ./scripts/e2e
# The checker stops what it started on its own failure, on SIGINT and SIGTERM,
# and its children die with it (Pdeathsig) should it be killed outright.
# `timeout` is the outer bound should it hang (SIGTERM, then SIGKILL); the trap
# hands an interrupt of this script on to the checker, which cleans up.
timeout --foreground --kill-after=15s 240s "$tmpbin/e2e" \
  --timeout="$E2E_TIMEOUT" \
  --prometheus="$PROMETHEUS" --promtool="$PROMTOOL" --alertmanager="$ALERTMANAGER" --chromium="$CHROMIUM" \
  "$@" &
checker=$!
trap 'kill -TERM "$checker" 2>/dev/null || true' INT TERM
status=0
while :; do
  wait "$checker" && status=0 || status=$?
  kill -0 "$checker" 2>/dev/null || break
done
trap - INT TERM
if [ "$status" -ne 0 ]; then
  echo "e2e: FAILED (exit $status) after $((SECONDS - start))s" >&2
  exit "$status"
fi

echo
echo "e2e: all passed in $((SECONDS - start))s"
