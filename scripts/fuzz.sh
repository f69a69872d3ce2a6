#!/usr/bin/env bash
# Copyright The modelarts_exporter Authors
# SPDX-License-Identifier: Apache-2.0
#
# Runs every go test fuzz target of the module for FUZZTIME each (default 30s),
# one after the other (go test -fuzz takes one target at a time). Seed corpora
# live in each package's testdata/fuzz/ and run with every plain "go test".
# A failure leaves the failing input in testdata/fuzz/<Target>/ and exits 1.
#
#   FUZZTIME=2m make fuzz
#   FUZZ_PACKAGES=./modelarts/ ./scripts/fuzz.sh
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
# Minimisation of a new interesting input can look like a stall: keep it short.
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-2s}
read -r -a packages <<<"${FUZZ_PACKAGES:-./...}"

failed=()
total=0
summary=()
for pkg in $("$GO" list "${packages[@]}"); do
	targets=$("$GO" test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
	for target in $targets; do
		total=$((total + 1))
		echo "=== $pkg $target for $FUZZTIME"
		log=$(mktemp)
		if "$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" \
			-fuzzminimizetime "$FUZZMINIMIZETIME" "$pkg" 2>&1 | tee "$log"; then
			execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
			summary+=("ok    $target ($pkg): ${execs:-?} execs")
		else
			failed+=("$pkg $target")
			summary+=("FAIL  $target ($pkg)")
		fi
		rm -f "$log"
	done
done

echo
echo "fuzz summary (FUZZTIME=$FUZZTIME each):"
printf '  %s\n' "${summary[@]}"
if [ "$total" -eq 0 ]; then
	echo "no fuzz targets found" >&2
	exit 1
fi
if [ "${#failed[@]}" -gt 0 ]; then
	echo "failing targets (inputs saved under testdata/fuzz/):" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
