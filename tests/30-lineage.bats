#!/usr/bin/env bats
# heimdal-lineage: bump and compare.

load helper
load states

setup() {
	setup_scratch
	cd "$BATS_TEST_TMPDIR"
}

@test "lineage: --help prints usage on stdout, exit 0" {
	run --separate-stderr heimdal-lineage --help
	expect_status 0
	[[ "$output" == usage:\ heimdal-lineage\ bump* ]] || fail "no usage"
	[ -z "$stderr" ] || fail "stderr not empty"
}

@test "lineage: a bad flag or verb is a usage error, exit 2, nothing on stdout" {
	run --separate-stderr heimdal-lineage --bogus compare
	expect_status 2
	[ -z "$output" ] || fail "stdout not empty"
	[[ "$stderr" == *usage:* ]] || fail "no usage"
	run --separate-stderr heimdal-lineage frobnicate
	expect_status 2
	[ -z "$output" ] || fail "stdout not empty"
	[[ "$stderr" == *"heimdal-lineage: error: unknown command 'frobnicate'"* ]] || fail "message"
}

@test "bump: serial, parent, machine, history entry with hostname, heimdal_version" {
	v2_state machine-1 > s.json
	run --separate-stderr heimdal-lineage bump --op apply s.json
	expect_status 0
	mid=$(cat "$HEIMDAL_HOME/machine-id")
	expect_json '.lineage.serial == 2 and .lineage.parent_serial == 1'
	expect_json ".lineage.machines == [\"machine-1\", \"$mid\"]"
	expect_json ".history == [{operation: \"apply\", timestamp: \"2024-01-15T10:30:00Z\",
		machine_id: \"$mid\", user: \"$USER\", hostname: \"test-host\", serial: 2}]"
	expect_json '.heimdal_version == "0.1.0"'
	expect_json '.lineage.git_commit == null'
	# The result is a valid state: bumping it again works and chains.
	printf '%s\n' "$output" | heimdal-lineage bump --op sync -c > s2.json
	jq -e '.lineage.serial == 3 and .lineage.parent_serial == 2 and
		(.history | map(.operation) == ["apply", "sync"]) and
		(.lineage.machines | length == 2)' s2.json
}

@test "bump: reads stdin, records --git-commit, keeps the newest 50 entries" {
	st 80 79 '.history = [range(1; 81) | h(.; "machine-1")]' > s.json
	run --separate-stderr heimdal-lineage bump --op commit --git-commit 0123abcd < s.json
	expect_status 0
	expect_json '.lineage.serial == 81 and .lineage.git_commit == "0123abcd"'
	expect_json '(.history | length) == 50'
	expect_json '.history[0].serial == 32 and .history[-1].serial == 81 and .history[-1].operation == "commit"'
}

@test "bump: a serial at the largest exact integer cannot grow, exit 2" {
	st 9007199254740991 9007199254740990 > s.json
	run --separate-stderr heimdal-lineage bump --op apply s.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[ "$stderr" = "heimdal-lineage: error: .lineage.serial: cannot grow past 9007199254740991" ] || fail "message"
}

@test "bump: a machine already in the lineage is not added twice" {
	v2_state machine-1 > s.json
	heimdal-lineage bump --op apply < s.json | heimdal-lineage bump --op apply > s2.json
	run jq -e '.lineage.machines | length == 2' s2.json
	expect_status 0
}

@test "bump: missing --op, a bad --op or --git-commit: exit 2, nothing on stdout" {
	v2_state > s.json
	run --separate-stderr heimdal-lineage bump < s.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == "heimdal-lineage: error: bump: --op is required" ]] || fail "message"
	run --separate-stderr heimdal-lineage bump --op 'two words' < s.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"--op: not an operation name: 'two words'"* ]] || fail "message"
	run --separate-stderr heimdal-lineage bump --op apply --git-commit XYZ < s.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"--git-commit: not a commit id"* ]] || fail "message"
}

@test "bump: an invalid or V1 state is refused naming the field, exit 2" {
	v2_state | jq '.lineage.serial = "42"' > bad.json
	run --separate-stderr heimdal-lineage bump --op apply bad.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[ "$stderr" = "heimdal-lineage: error: bad.json: .lineage.serial: expected a non-negative integer, got string" ] ||
		fail "message"
	run --separate-stderr heimdal-lineage bump --op apply < "$FIXTURES/v1.json"
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"<stdin>: .version: missing (a V1 state"* ]] || fail "message"
	echo '{"version": 2' > trunc.json
	run --separate-stderr heimdal-lineage bump --op apply trunc.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == "heimdal-lineage: error: trunc.json: invalid JSON: "* ]] || fail "message"
}

@test "compare: equal (same serial and newest entry), exit 0" {
	st 42 41 '.history = [h(41; "m1"), h(42; "m1")]' > l.json
	cp l.json r.json
	run --separate-stderr heimdal-lineage compare --local l.json --remote r.json
	expect_status 0
	expect_json '. == {relation: "equal", local_serial: 42, remote_serial: 42, common_parent: 42}'
}

@test "compare: ahead and behind through history, exit 0" {
	st 42 41 '.history = [h(41; "m1"), h(42; "m1")]' > old.json
	st 44 43 '.history = [h(41; "m1"), h(42; "m1"), h(43; "m2"), h(44; "m2")]' > new.json
	run --separate-stderr heimdal-lineage compare --local new.json --remote old.json
	expect_status 0
	expect_json '. == {relation: "ahead", local_serial: 44, remote_serial: 42, common_parent: 42}'
	run --separate-stderr heimdal-lineage compare --local old.json --remote new.json
	expect_status 0
	expect_json '.relation == "behind" and .common_parent == 42'
}

@test "compare: the spec's 42 vs 42 from parent 41 is diverged (common parent 41), exit 1" {
	st 42 41 '.history = [h(40; "m1"), h(41; "m1"), h(42; "machine-A")]' > l.json
	st 42 41 '.history = [h(40; "m1"), h(41; "m1"), h(42; "machine-B")]' > r.json
	run --separate-stderr heimdal-lineage compare --local l.json --remote r.json
	expect_status 1
	expect_json '. == {relation: "diverged", local_serial: 42, remote_serial: 42, common_parent: 41}'
}

@test "compare: the spec's 42 vs 43 from 41 is diverged (common parent 41), exit 1" {
	st 42 41 '.history = [h(41; "m1"), h(42; "machine-A")]' > l.json
	st 43 42 '.history = [h(41; "m1"), h(42; "machine-B"), h(43; "machine-B")]' > r.json
	run --separate-stderr heimdal-lineage compare --local l.json --remote r.json
	expect_status 1
	expect_json '. == {relation: "diverged", local_serial: 42, remote_serial: 43, common_parent: 41}'
}

@test "compare without history (migrated or spec sample states): serial rules" {
	# The spec's samples: 42 from 41 on both sides, different content.
	st 42 41 > l.json
	st 42 41 '.checksums[".bashrc"] = sum(7)' > r.json
	run heimdal-lineage compare --local l.json --remote r.json
	expect_status 1
	expect_json '.relation == "diverged" and .common_parent == 41'
	# 42 vs 43, both from 41.
	st 43 41 > r.json
	run heimdal-lineage compare --local l.json --remote r.json
	expect_status 1
	expect_json '. == {relation: "diverged", local_serial: 42, remote_serial: 43, common_parent: 41}'
	# Same serial, same parent, same checksums: equal.
	st 42 41 > r.json
	run heimdal-lineage compare --local l.json --remote r.json
	expect_status 0
	expect_json '.relation == "equal"'
	# A chain: 43 from 42 descends from 42.
	st 43 42 > r.json
	run heimdal-lineage compare --local l.json --remote r.json
	expect_status 0
	expect_json '.relation == "behind" and .common_parent == 42'
	run heimdal-lineage compare --local r.json --remote l.json
	expect_status 0
	expect_json '.relation == "ahead"'
}

@test "compare: histories that no longer overlap give common_parent null" {
	st 142 141 '.history = [range(93; 143) | h(.; "machine-A")]' > l.json
	st 42 41 '.history = [range(1; 43) | h(.; "machine-B")]' > r.json
	run heimdal-lineage compare --local l.json --remote r.json
	expect_status 1
	expect_json '. == {relation: "diverged", local_serial: 142, remote_serial: 42, common_parent: null}'
}

@test "compare: different lineage ids are unrelated, exit 1" {
	st 42 41 > l.json
	st 42 41 '.lineage.id = "lineage-other"' > r.json
	run heimdal-lineage compare --local l.json --remote r.json
	expect_status 1
	expect_json '.relation == "unrelated" and .common_parent == null'
}

@test "compare: in a pipeline with jq, and after a bump on each side" {
	v2_state machine-1 > base.json
	as_a() { HEIMDAL_HOME="$BATS_TEST_TMPDIR/a" HEIMDAL_HOSTNAME=a "$@"; }
	as_b() { HEIMDAL_HOME="$BATS_TEST_TMPDIR/b" HEIMDAL_HOSTNAME=b "$@"; }
	as_a heimdal-lineage bump --op apply < base.json > a.json
	as_b heimdal-lineage bump --op apply < base.json > b.json
	run bash -c 'jq -n --slurpfile l a.json --slurpfile r b.json "{local: \$l[0], remote: \$r[0]}" |
		heimdal-lineage compare -c | jq -r .relation'
	expect_status 0
	[ "$output" = diverged ] || fail "expected diverged"
	heimdal-lineage bump --op sync < a.json > a2.json
	run bash -c 'jq -n --slurpfile l a2.json --slurpfile r a.json "{local: \$l[0], remote: \$r[0]}" |
		heimdal-lineage compare'
	expect_status 0
	expect_json '.relation == "ahead" and .common_parent == 2'
}

@test "compare: malformed input is exit 2 with the field named, nothing on stdout" {
	st 42 41 > s.json
	run --separate-stderr bash -c 'jq -n --slurpfile l s.json "{local: \$l[0]}" | heimdal-lineage compare'
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[ "$stderr" = "heimdal-lineage: error: <stdin>: .remote: missing" ] || fail "message"
	run --separate-stderr heimdal-lineage compare --local s.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"--local: needs --local and --remote"* ]] || fail "message"
	run --separate-stderr heimdal-lineage compare --local s.json --remote missing.json
	expect_status 3
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"missing.json: No such file or directory"* ]] || fail "message"
}
