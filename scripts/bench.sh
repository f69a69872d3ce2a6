#!/usr/bin/env bash
# Copyright The modelarts_exporter Authors
# SPDX-License-Identifier: Apache-2.0
#
# The scale benchmarks of collector/scale_bench_test.go, against the in-process
# simulator: scrape time and API calls at 10, 1,000 and 10,000 images (20 ms a
# call, at most 10 in flight), two scrapers at once, CPU and allocations per
# scrape, live heap after 1,000 scrapes, /metrics render time and size; and
# main_test's /metrics answer at 10,000 images from the shared fetch, plain and
# gzip, value cache hit vs off; and the two programs at 50,000 images
# (RSS_IMAGES): the time of the exporter's scrapes and its peak RSS.
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

# The exporter and the simulator as programs on loopback: RSS_IMAGES images
# discovered (ListImage, 1,000 a page), six scrapes with gzip as Prometheus
# asks, one second apart. VmHWM is the exporter's peak resident set.
rss() {
	local dir port=$((20000 + RANDOM % 20000)) times=() sim exp
	dir=$(mktemp -d)
	$GO build -o "$dir/exporter" . && $GO build -o "$dir/simulator" ./cmd/modelarts-simulator ||
		{ echo "rss: the build failed" >&2; rm -rf "$dir"; return 1; }
	cp deploy/demo/demo_secret_key "$dir/"
	printf '%s\n' 'projects:' '  - name: bench' '    region: eu-de' \
		'    project_id: 5d1c6a0f8e2b4c3d9a7e6f5b4c3d2e1f' \
		"    modelarts_endpoint: http://127.0.0.1:$port" "    iam_endpoint: http://127.0.0.1:$port" \
		'    auth: {access_key: DEMOACCESSKEYEXAMPLE, secret_key_file: demo_secret_key}' \
		'    discovery: {}' >"$dir/config.yml"
	"$dir/simulator" --web.listen-address="127.0.0.1:$port" --images="$RSS_IMAGES" >"$dir/sim.log" 2>&1 &
	sim=$!
	"$dir/exporter" --config.file="$dir/config.yml" --web.listen-address="127.0.0.1:$((port + 1))" >"$dir/exp.log" 2>&1 &
	exp=$!
	for _ in $(seq 100); do
		curl -fsS "127.0.0.1:$port/-/healthy" >/dev/null 2>&1 && curl -fsS "127.0.0.1:$((port + 1))/-/ready" >/dev/null 2>&1 && break
		sleep 0.1
	done
	for _ in 1 2 3 4 5 6; do
		times+=("$(curl -fsS -o "$dir/answer.gz" -w '%{time_total}' -H 'Accept-Encoding: gzip' \
			-H 'X-Prometheus-Scrape-Timeout-Seconds: 60' "127.0.0.1:$((port + 1))/metrics")") ||
			{ echo "rss: the scrape failed; logs in $dir" >&2; kill "$sim" "$exp"; return 1; }
		sleep 1
	done
	echo "binaries at $RSS_IMAGES images: $(zcat "$dir/answer.gz" | grep -c '^modelarts_image_up{.*} 1') images up;" \
		"scrapes ${times[*]} s (the first fetches and encodes the values);" \
		"exporter's peak RSS $(awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' "/proc/$exp/status")"
	kill "$sim" "$exp"
	wait "$sim" "$exp" 2>/dev/null || true
	rm -rf "$dir"
}
RSS_IMAGES=${RSS_IMAGES:-50000}
rss | tee -a "$OUT"

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
