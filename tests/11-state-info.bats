#!/usr/bin/env bats
# heimdal state version and heimdal state history.

load helper

@test "state version prints the spec's three lines" {
	cp "$FIXTURES/v2-spec.json" "$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state version
	expect_status 0
	[ "$output" = "State Version: 2
Machine ID: 550e8400-e29b-41d4-a716-446655440000
Serial: 42" ]
}

@test "state version --json" {
	cp "$FIXTURES/v2-spec.json" "$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state version --json
	expect_status 0
	expect_json '.version == 2 and .serial == 42 and .machine_id == "550e8400-e29b-41d4-a716-446655440000" and .valid'
}

@test "state version: a broken state gives the field path, exit 2, never a crash" {
	for case in \
		'.lineage.serial = "42"|.lineage.serial: expected a non-negative integer, got string' \
		'.lineage.serial = -1|.lineage.serial: expected a non-negative integer, got -1' \
		'del(.machine)|.machine: missing' \
		'.machine.id = 5|.machine.id: expected a string, got number' \
		'.history[0].timestamp = "yesterday"|.history[0].timestamp: not an RFC 3339 timestamp: '"'yesterday'" \
		'.checksums["../../etc/passwd"] = "5d41402abc4b2a76b9719d911017c592"|.checksums["../../etc/passwd"]: unsafe path: '"'..'"' component' \
		'.checksums[".bashrc"] = "xyz"|.checksums[".bashrc"]: not a checksum (32 or 64 lowercase hex digits): '"'xyz'" \
		'.lineage.machines = "a"|.lineage.machines: expected an array, got string' \
		'.active_profile = "a/b"|.active_profile: not a valid name: '"'a/b'"; do
		filter=${case%%|*}
		want=${case#*|}
		jq "$filter" "$FIXTURES/v2-spec.json" >"$HEIMDAL_HOME/state.json"
		run --separate-stderr heimdal state version
		[ "$status" -eq 2 ] || fail "$filter: status $status"
		[ -z "$output" ] || fail "$filter: stdout not empty"
		[ "$stderr" = "heimdal: error: $HEIMDAL_HOME/state.json: $want" ] || fail "$filter: got '$stderr'"
	done
}

@test "state version: a V3 state is refused, exit 2, untouched" {
	jq '.version = 3' "$FIXTURES/v2-spec.json" >"$HEIMDAL_HOME/state.json"
	before=$(snapshot "$HEIMDAL_HOME")
	run --separate-stderr heimdal state version
	expect_status 2
	[ -z "$output" ]
	[[ "$stderr" == *"state version 3 was written by a newer heimdal"* ]]
	[ "$(snapshot "$HEIMDAL_HOME")" = "$before" ]
}

@test "state version: truncated JSON, exit 2 with the position" {
	head -c 100 "$FIXTURES/v2-spec.json" >"$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state version
	expect_status 2
	[ -z "$output" ]
	[[ "$stderr" == "heimdal: error: $HEIMDAL_HOME/state.json: invalid JSON: "*"line"* ]]
}

@test "state version: an unreadable state is an environment error, exit 3" {
	[ "$(id -u)" != 0 ] || skip "root reads any file"
	cp "$FIXTURES/v2-spec.json" "$HEIMDAL_HOME/state.json"
	chmod 000 "$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state version
	expect_status 3
	[[ "$stderr" == *"Permission denied"* ]]
}

@test "state version: a state directory entry that is not a file, exit 3" {
	mkdir "$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state version
	expect_status 3
	[ -z "$output" ]
}

@test "state version warns when the state is readable by others" {
	cp "$FIXTURES/v2-spec.json" "$HEIMDAL_HOME/state.json"
	chmod 644 "$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state version
	expect_status 0
	[[ "$stderr" == *"accessible by other users (mode 644)"* ]]
}

history_state() {
	jq '.history = [
		{operation:"sync", timestamp:"2024-01-14T15:15:00Z", machine_id:"m-work", user:"john", hostname:"work-laptop", serial:39},
		{operation:"apply", timestamp:"2024-01-14T15:20:00Z", machine_id:"m-work", user:"john", hostname:"work-laptop", serial:40},
		{operation:"sync", timestamp:"2024-01-15T10:30:00Z", machine_id:"550e8400-e29b-41d4-a716-446655440000", user:"john", serial:41},
		{operation:"apply", timestamp:"2024-01-15T10:35:00Z", machine_id:"550e8400-e29b-41d4-a716-446655440000", user:"john", hostname:"macbook-pro", serial:42}
	]' "$FIXTURES/v2-spec.json" >"$HEIMDAL_HOME/state.json"
}

@test "state history: the spec's listing, newest first" {
	history_state
	run --separate-stderr heimdal state history
	expect_status 0
	[ "$output" = "Recent State Operations (last 10):

42. apply  2024-01-15 10:35:00  macbook-pro  john  550e8400
41. sync   2024-01-15 10:30:00  macbook-pro  john  550e8400
40. apply  2024-01-14 15:20:00  work-laptop  john  m-work
39. sync   2024-01-14 15:15:00  work-laptop  john  m-work" ] || fail "listing differs"
}

@test "state history: columns stay aligned when the serials grow a digit" {
	jq '.history = [range(8; 12) | {operation: (if . % 2 == 0 then "apply" else "sync" end),
		timestamp: "2024-01-15T10:30:00Z", machine_id: "550e8400-e29b-41d4-a716-446655440000",
		user: "john", hostname: "macbook-pro", serial: .}]' "$FIXTURES/v2-spec.json" >"$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state history
	expect_status 0
	[ "$output" = "Recent State Operations (last 10):

11. sync   2024-01-15 10:30:00  macbook-pro  john  550e8400
10. apply  2024-01-15 10:30:00  macbook-pro  john  550e8400
 9. sync   2024-01-15 10:30:00  macbook-pro  john  550e8400
 8. apply  2024-01-15 10:30:00  macbook-pro  john  550e8400" ] || fail "$output"
}

@test "state history: two machines with one hostname are told apart by their ids; --long shows them whole" {
	jq '.history = [
		{operation:"init", timestamp:"2024-01-15T10:00:00Z", machine_id:"7c9e6679-7425-40de-944b-e07fc1f90ae7", user:"john", hostname:"laptop", serial:1},
		{operation:"sync", timestamp:"2024-01-15T10:10:00Z", machine_id:"7c9e6679-8ac1-4c2a-9e4f-1b2c3d4e5f60", user:"jo", hostname:"laptop", serial:2}
	]' "$FIXTURES/v2-spec.json" >"$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state history
	expect_status 0
	# Abbreviated as git abbreviates: 8 characters, more while two would look alike.
	[ "$output" = "Recent State Operations (last 10):

2. sync  2024-01-15 10:10:00  laptop  jo    7c9e6679-8
1. init  2024-01-15 10:00:00  laptop  john  7c9e6679-7" ] || fail "$output"
	run --separate-stderr heimdal state history --long
	expect_status 0
	[ "$output" = "Recent State Operations (last 10):

2. sync  2024-01-15 10:10:00  laptop  jo    7c9e6679-8ac1-4c2a-9e4f-1b2c3d4e5f60
1. init  2024-01-15 10:00:00  laptop  john  7c9e6679-7425-40de-944b-e07fc1f90ae7" ] || fail "$output"
	run --separate-stderr heimdal state history -c
	expect_status 0
	[ "$(wc -l <<<"$output")" -eq 1 ]
	expect_json 'map(.machine_id) == ["7c9e6679-8ac1-4c2a-9e4f-1b2c3d4e5f60", "7c9e6679-7425-40de-944b-e07fc1f90ae7"]'
}

@test "state history --limit 2" {
	history_state
	run heimdal state history --limit 2
	expect_status 0
	[ "$output" = "Recent State Operations (last 2):

42. apply  2024-01-15 10:35:00  macbook-pro  john  550e8400
41. sync   2024-01-15 10:30:00  macbook-pro  john  550e8400" ]
}

@test "state history --json is newest first, every entry with a hostname" {
	history_state
	run --separate-stderr heimdal state history --json --limit 3
	expect_status 0
	expect_json 'length == 3 and (map(.serial) == [42,41,40]) and all(.[]; .hostname != null)'
	expect_json '.[1].hostname == "macbook-pro"'
}

@test "state history: a bad --limit is a usage error naming the flag" {
	history_state
	for bad in 0 -3 ten ""; do
		run --separate-stderr heimdal state history --limit "$bad"
		[ "$status" -eq 2 ] || fail "--limit '$bad': status $status"
		[ -z "$output" ]
		[[ "$stderr" == *"--limit: expected a positive integer, got '$bad'" ]] || fail "$stderr"
	done
	run --separate-stderr heimdal state history --limit
	expect_status 2
	[[ "$stderr" == *"--limit: requires a value"* ]]
}

@test "state history on a fresh state says there is nothing yet" {
	v2_state >"$HEIMDAL_HOME/state.json"
	run heimdal state history
	expect_status 0
	[ "$output" = "Recent State Operations (last 10):

No operations recorded yet." ]
}

@test "state: unknown subcommand and unknown option are usage errors" {
	run --separate-stderr heimdal state frob
	expect_status 2
	[ "$stderr" = "heimdal: 'state frob' is not a heimdal command. See 'heimdal state --help'." ]
	v2_state >"$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal state version --frob
	expect_status 2
	[ -z "$output" ]
	[[ "$stderr" == *"unknown option '--frob'"* ]]
}
