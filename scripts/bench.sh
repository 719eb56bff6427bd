#!/usr/bin/env bash
# `make bench`: the Go benchmarks of the hot paths, then `offencecam bench` on the shared
# roadside frames. Figures are only comparable within one run on one machine: report ratios
# (pipeline vs raw model time, end-to-end vs analyse-only), not absolute times across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCHTIME=${BENCHTIME:-2s}
SHARED=${OFFENCECAM_SHARED:-../shared}
out=${BENCH_OUT:-var/bench}
mkdir -p "$out"

run() { # package, benchmark regexp, benchtime
	echo "== go test -bench '$2' $1"
	go test -run '^$' -bench "$2" -benchtime "${3:-$BENCHTIME}" -benchmem "$1" | tee -a "$out/go-bench.txt"
}
: >"$out/go-bench.txt"
run ./detector/imgproc 'DecodeFull|DecodeReduced|Letterbox' 10x
run ./detector/ort 'Run' 20x
run ./detector/decode '.' 200x
run ./detector 'Analyze|Decode|ModelRun' 20x
# End-to-end FRAMES → DETECTIONS next to analyse-only, same images, same run.
run ./detector/worker 'Detect' 120x
run ./ingest 'IngestEventToFrame' 3000x
run ./internal/objstore 'PutGet2MB' 20x
run ./platform '.' 2s
run ./review/cases '.' 200x

echo "== offencecam bench (whole pipeline on the shared roadside frames)"
bin/offencecam bench --json "$SHARED/data/seatbelt-phone/images" | tee "$out/pipeline.json"
echo "bench: results in $out/"
