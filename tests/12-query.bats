#!/usr/bin/env bats
# heimdal state query: jq filters over the state, plain paths on the fast path.

load helper

setup() {
	setup_scratch
	cp "$FIXTURES/v2-spec.json" "$HEIMDAL_HOME/state.json"
}

# Every filter must print exactly what the jq binary prints for it.
same_as_jq() {
	local file=$1
	shift
	run --separate-stderr heimdal state query "$@" "$file"
	local ours=$output ours_status=$status
	run --separate-stderr jq "$@" "$file"
	[ "$ours_status" -eq "$status" ] || fail "status $ours_status vs jq's $status for: $*"
	[ "$ours" = "$output" ] || fail "output differs from jq for: $*" "ours: $ours" "jq: $output"
}

# refused NAME TEXT MESSAGE: querying .a in TEXT is an invalid-JSON error naming NAME.
refused() {
	printf "$2" >"$BATS_TEST_TMPDIR/$1"
	run --separate-stderr heimdal state query .a "$BATS_TEST_TMPDIR/$1"
	expect_status 2
	[ -z "$output" ] || fail "stdout: $output"
	[[ "$stderr" == *"$1: invalid JSON$3"* ]] || fail "stderr: $stderr"
}

@test "query: plain paths answer exactly as jq does" {
	for f in . .version .lineage .lineage.serial .lineage.machines .lineage.machines[0] \
		'.lineage.machines[-1]' '.lineage.machines[7]' '.checksums[".bashrc"]' \
		'.checksums.".vimrc"' '.["lineage"]["serial"]' '.history[0].machine_id' \
		.nosuch .nosuch.deeper '.machine."hostname"' '.checksums["a\"b"]'; do
		same_as_jq "$HEIMDAL_HOME/state.json" "$f"
		same_as_jq "$HEIMDAL_HOME/state.json" -c "$f"
		same_as_jq "$HEIMDAL_HOME/state.json" -r "$f"
	done
}

@test "query: general filters go through libjq with jq's output" {
	for f in '.checksums | keys' '.history | map(.serial) | add' \
		'.lineage | {id, serial}' '[.lineage.machines[] | ascii_upcase]' \
		'.checksums | to_entries[] | "\(.key)=\(.value)"' 'empty'; do
		same_as_jq "$HEIMDAL_HOME/state.json" "$f"
		same_as_jq "$HEIMDAL_HOME/state.json" -c "$f"
		same_as_jq "$HEIMDAL_HOME/state.json" -r "$f"
	done
}

@test "query over the local state by default" {
	run --separate-stderr heimdal state query .lineage.serial
	expect_status 0
	[ "$output" = 42 ]
	run --separate-stderr heimdal state query -r '.machine.hostname + "/" + .machine.os'
	expect_status 0
	[ "$output" = "macbook-pro/darwin" ]
}

@test "query --arg binds variables" {
	run --separate-stderr heimdal state query -r --arg who john --arg n 2 '"\($who) has \($n)"'
	expect_status 0
	[ "$output" = "john has 2" ]
	run --separate-stderr heimdal state query -c --arg p .bashrc '.checksums | has($p)'
	expect_status 0
	[ "$output" = true ]
}

@test "query reads FILE or stdin" {
	run --separate-stderr heimdal state query .lineage.id "$FIXTURES/v2-spec.json"
	expect_status 0
	[ "$output" = '"lineage-abc123"' ]
	run --separate-stderr heimdal state query -c '.a' - <<<'{"a": [1, 2]}'
	expect_status 0
	[ "$output" = "[1,2]" ]
}

@test "query: a bad filter gives jq's compile error, exit 2, nothing on stdout" {
	run --separate-stderr heimdal state query '.a |||'
	expect_status 2
	[ -z "$output" ]
	[[ "$stderr" == *"jq: error: syntax error"* ]]
	[[ "$stderr" == *"jq: 1 compile error"* ]]
}

@test "query: a runtime error is jq's message, exit 2" {
	run --separate-stderr heimdal state query '.version.x'
	expect_status 2
	[ -z "$output" ]
	[[ "$stderr" == *'jq: error (at '*'state.json): Cannot index number with '*'"x"' ]] || fail "$stderr"
	run --separate-stderr heimdal state query '.lineage.machines.x'
	expect_status 2
	[[ "$stderr" == *'Cannot index array with '*'"x"' ]]
}

@test "query: a path through a string falls back to jq's error" {
	run --separate-stderr heimdal state query '.active_profile[0]'
	expect_status 2
	[[ "$stderr" == *"Cannot index string with number"* ]]
}

@test "query: duplicate keys resolve as in jq (the last wins)" {
	printf '{"a": {"b": 1}, "a": {"c": 2}}' >"$BATS_TEST_TMPDIR/dup.json"
	same_as_jq "$BATS_TEST_TMPDIR/dup.json" .a.b
	same_as_jq "$BATS_TEST_TMPDIR/dup.json" .a.c
}

@test "query: escaped keys and unicode are found" {
	printf '{"k\\u00e9": 1, "\\"q\\"": 2, "caf\xc3\xa9": 3}' >"$BATS_TEST_TMPDIR/esc.json"
	same_as_jq "$BATS_TEST_TMPDIR/esc.json" '.["k\u00e9"]'
	same_as_jq "$BATS_TEST_TMPDIR/esc.json" '.["\"q\""]'
	same_as_jq "$BATS_TEST_TMPDIR/esc.json" '.["café"]'
}

@test "query: malformed input is an error even for a plain path" {
	refused bad.json '{"a": 1, "b": }' ''
	run --separate-stderr heimdal state query .a - </dev/null
	expect_status 2
	[[ "$stderr" == *"<stdin>: invalid JSON: empty input" ]]
}

@test "query: a V1 state is migrated first; a V3 state refused" {
	install_state v1.json
	run --separate-stderr heimdal state query .lineage.serial
	expect_status 0
	[ "$output" = 1 ]
	jq -e '.version == 2' "$HEIMDAL_HOME/state.json"
	jq '.version = 3' "$FIXTURES/v2-spec.json" >"$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state query .lineage.serial
	expect_status 2
	[ -z "$output" ]
	[[ "$stderr" == *"written by a newer heimdal"* ]]
}

@test "query: usage errors" {
	run --separate-stderr heimdal state query
	expect_status 2
	[[ "$stderr" == *"usage: heimdal state query"* ]]
	run --separate-stderr heimdal state query --arg onlyname
	expect_status 2
	run --separate-stderr heimdal state query . a b
	expect_status 2
	run --separate-stderr heimdal state query . "$BATS_TEST_TMPDIR/missing.json"
	expect_status 3
	[[ "$stderr" == *"missing.json: No such file or directory" ]]
}

@test "pipeline: heimdal-migrate | heimdal state query - | jq" {
	heimdal-migrate "$FIXTURES/v1.json" | heimdal state query -c '.lineage' - |
		jq -e '.serial == 1 and (.machines | length) == 1'
}

@test "query: an invalid escape after the answer is still a JSON error (fuzz regression)" {
	refused esc.json '{"a": 1, "b": ["x", "\\a"]}' ': Invalid escape'
}

@test "query: a lone surrogate escape anywhere is jq's JSON error; a paired one is read (fuzz regression)" {
	refused sur.json '{"a": 1, "b": "\\uDbcc"}' ': Invalid \uXXXX\uXXXX surrogate pair escape'
	printf '{"a": 1, "b": "\\ud83d\\ude00"}' >"$BATS_TEST_TMPDIR/pair.json"
	same_as_jq "$BATS_TEST_TMPDIR/pair.json" -c .b
}

@test "query prints byte for byte what jq prints: every control character, DEL, quotes, unicode" {
	python3 -c '
import json
s = "".join(chr(i) for i in range(0x80)) + "\u00e9\u20ac\U0001f600\"\\"
print(json.dumps({"a": s, s: [s, 1, 2.5, -0.0, 1e300, True, None], "plain": "abc"}))' \
		>"$BATS_TEST_TMPDIR/esc.json"
	run --separate-stderr heimdal state query -c . "$BATS_TEST_TMPDIR/esc.json"
	expect_status 0
	[ "$output" = "$(jq -c . "$BATS_TEST_TMPDIR/esc.json")" ] || fail "compact output differs"
	run --separate-stderr heimdal state query . "$BATS_TEST_TMPDIR/esc.json"
	expect_status 0
	[ "$output" = "$(jq . "$BATS_TEST_TMPDIR/esc.json")" ] || fail "pretty output differs"
}
