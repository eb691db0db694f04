# states.bash - building V2 states for the lineage, conflict and merge suites.
#
#   st SERIAL PARENT [FILTER]   the spec's V2 sample with that lineage serial and
#                               parent, an empty history, then the jq FILTER
#                               (which may use h(SERIAL; MACHINE) for a history
#                               entry and sum(N) for a checksum)
#   pair LOCAL REMOTE [BASE]    {"local", "remote", "base"} from three files

JQ_DEFS='def h($s; $m): {operation: "apply", timestamp: ("2024-01-15T10:" + (($s % 60) | tostring | if length < 2 then "0" + . else . end) + ":00Z"), machine_id: $m, user: "john", serial: $s};
def sum($n): ($n | tostring) as $t | ("0" * (32 - ($t | length))) + $t;'

st() {
	jq --argjson s "$1" --argjson p "$2" \
		"$JQ_DEFS .lineage.serial = \$s | .lineage.parent_serial = \$p | .history = [] ${3:+| $3}" \
		"$FIXTURES/v2-spec.json"
}

pair() {
	if [ -n "${3:-}" ]; then
		jq -n --slurpfile l "$1" --slurpfile r "$2" --slurpfile b "$3" \
			'{local: $l[0], remote: $r[0], base: $b[0]}'
	else
		jq -n --slurpfile l "$1" --slurpfile r "$2" '{local: $l[0], remote: $r[0]}'
	fi
}
