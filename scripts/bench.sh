#!/usr/bin/env bash
# Copyright The modelarts_exporter Authors
# SPDX-License-Identifier: Apache-2.0
#
# The scale benchmarks of collector/scale_bench_test.go, against the in-process
# simulator: scrape time and API calls at 10, 1,000 and 10,000 images (20 ms a
# call, at most 10 in flight), two scrapers at once, CPU and allocations per
# scrape, live heap after 1,000 scrapes, /metrics render time and size; and
# main_test's /metrics answer at 10,000 images from the shared fetch, plain and
# gzip, value cache hit vs off.
#
# Each benchmark runs COUNT times (default 5); the table gives the median of
# every metric. The raw output is kept in BENCH_OUT (default .bench/bench.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
COUNT=${COUNT:-5}
OUT=${BENCH_OUT:-.bench/bench.txt}
mkdir -p "$(dirname "$OUT")"

# The numbers are only as good as the machine is quiet: say how busy it was.
load() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime; }
echo "load average before: $(load), $(nproc 2>/dev/null || echo '?') CPUs"
{
	$GO test -run '^$' -bench 'BenchmarkScrape$|BenchmarkTwoScrapers|BenchmarkScrapeCPU|BenchmarkRender' \
		-benchmem -count "$COUNT" -timeout 30m ./collector/
	$GO test -run '^$' -bench 'BenchmarkScrapeAnswer' -benchmem -count "$COUNT" -timeout 30m .
	$GO test -run '^$' -bench 'BenchmarkHeapAfterScrapes' -benchtime 1x -benchmem -count 1 -timeout 30m ./collector/
} | tee "$OUT"
echo "load average after: $(load)"

echo
echo "Medians of $COUNT runs ($(grep -m1 '^cpu:' "$OUT" | cut -d' ' -f2-); the -N suffix is GOMAXPROCS):"
echo
echo "| benchmark | medians |"
echo "|---|---|"
awk '
/^Benchmark/ {
	name = $1
	if (!(name in order)) { order[name] = ++n; names[n] = name }
	for (i = 3; i + 1 <= NF; i += 2) {
		key = name SUBSEP $(i + 1)
		if (!(key in count)) units[name] = units[name] " " $(i + 1)
		vals[key, ++count[key]] = $i
	}
}
function median(key,    m, a, i, j, t) {
	m = count[key]
	for (i = 1; i <= m; i++) a[i] = vals[key, i] + 0
	for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
function show(v, unit) {
	if (unit == "ns/op") return sprintf("%.1f ms/op", v / 1e6)
	if (unit == "B/op") return sprintf("%.1f MB/op", v / 1048576)
	if (unit == "allocs/op" || unit == "bytes") return sprintf("%.0f %s", v, unit)
	return sprintf("%.3g %s", v, unit)
}
END {
	for (o = 1; o <= n; o++) {
		name = names[o]
		split(substr(units[name], 2), us, " ")
		line = ""
		for (u = 1; u in us; u++) line = line (u > 1 ? ", " : "") show(median(name SUBSEP us[u]), us[u])
		print "| " name " | " line " |"
	}
}' "$OUT"
