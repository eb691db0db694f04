# lib.sh - benchmark helpers (sourced by tests/bench/run).
#
# bench NAME TARGET HEIMDAL_CMD PEER_NAME PEER_CMD [hyperfine args...]
#   times both commands with hyperfine and prints one row:
#   NAME | heimdal ms | peer | peer ms | ratio | target
# Benchmarks report; they never fail the build.

BENCH_DIR=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/heimdal-bench.XXXXXX")}
export BENCH_DIR

bench() {
	local name=$1 target=$2 ours=$3 peer=$4 theirs=$5
	shift 5
	local out="$BENCH_DIR/$name.json"
	if ! hyperfine -N --warmup 3 --min-runs 10 --style none "$@" \
		--export-json "$out" "$ours" "$theirs" >/dev/null 2>"$BENCH_DIR/$name.err"; then
		hyperfine --warmup 3 --min-runs 10 --style none "$@" \
			--export-json "$out" "$ours" "$theirs" >/dev/null 2>"$BENCH_DIR/$name.err" || {
			printf '%-34s %s\n' "$name" "FAILED (see $BENCH_DIR/$name.err)"
			return 0
		}
	fi
	jq -r --arg name "$name" --arg peer "$peer" --arg target "$target" '
		.results as $r
		| ($r[0].mean * 1000) as $a | ($r[1].mean * 1000) as $b
		| "\($name)|\($a * 100 | round / 100)|\($peer)|\($b * 100 | round / 100)|\($a / $b * 100 | round / 100)|\($target)"
	' "$out" | awk -F'|' '{ printf "%-34s %10s ms  %-22s %10s ms  %6sx  (target <= %s)\n", $1, $2, $3, $4, $5, $6 }'
}
