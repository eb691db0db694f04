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
	st 50 49 '.history = [range(1; 51) | h(.; "machine-1")]' > s.json
	run --separate-stderr heimdal-lineage bump --op commit --git-commit 0123abcd < s.json
	expect_status 0
	expect_json '.lineage.serial == 51 and .lineage.git_commit == "0123abcd"'
	expect_json '(.history | length) == 50'
	expect_json '.history[0].serial == 2 and .history[-1].serial == 51 and .history[-1].operation == "commit"'
	# More than 50 is no state heimdal wrote: refused, as heimdal.7 says.
	st 80 79 '.history = [range(1; 81) | h(.; "machine-1")]' > s.json
	run --separate-stderr heimdal-lineage bump --op commit < s.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[ "$stderr" = "heimdal-lineage: error: <stdin>: .history: 80 entries, at most 50 (the newest) are kept" ] ||
		fail "message"
}

@test "bump --above: the new serial is above N too, the parent the old serial" {
	st 42 41 '.history = [h(42; "m1")]' > s.json
	run --separate-stderr heimdal-lineage bump --op resolve --above 45 s.json
	expect_status 0
	expect_json '.lineage.serial == 46 and .lineage.parent_serial == 42 and .history[-1].serial == 46'
	run --separate-stderr heimdal-lineage bump --op resolve --above 7 s.json
	expect_status 0
	expect_json '.lineage.serial == 43 and .lineage.parent_serial == 42'
	for bad in -1 x 4x ''; do
		run --separate-stderr heimdal-lineage bump --op resolve --above "$bad" s.json
		expect_status 2
		[ -z "$output" ] || fail "stdout"
		[ "$stderr" = "heimdal-lineage: error: --above: not a serial: '$bad'" ] || fail "message for '$bad'"
	done
	run --separate-stderr heimdal-lineage compare --above 3 --local s.json --remote s.json
	expect_status 2
	[ "$stderr" = "heimdal-lineage: error: --above: only for bump" ] || fail "compare"
}

@test "bump: a serial at the largest one (2^52) cannot grow, exit 2; past it a state is refused on read" {
	st 4503599627370496 4503599627370495 > s.json
	run --separate-stderr heimdal-lineage bump --op apply s.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[ "$stderr" = "heimdal-lineage: error: .lineage.serial: cannot grow past 4503599627370496" ] || fail "message"
	# A state near 2^53 (one bad push) is refused where it is read, naming the field.
	st 9007199254740991 9007199254740990 > s.json
	run --separate-stderr heimdal-lineage bump --op apply s.json
	expect_status 2
	[ "$stderr" = "heimdal-lineage: error: s.json: .lineage.serial: 9007199254740991 is past the largest serial, 4503599627370496: no write could follow it" ] || fail "$stderr"
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

# One row per relation: local (serial, parent, jq filter), remote (the same),
# the exit status, and heimdal-lineage compare's whole answer.
@test "compare: equal, ahead, behind (exit 0); diverged (exit 1), the spec's cases among them" {
	while IFS='^' read -r ls lp lf rs rp rf code want; do
		st "$ls" "$lp" "$lf" >l.json
		st "$rs" "$rp" "$rf" >r.json
		run --separate-stderr heimdal-lineage compare --local l.json --remote r.json
		[ "$status" -eq "$code" ] || fail "$ls/$lf vs $rs/$rf: exit $status, not $code"
		printf '%s' "$output" | jq -e ". == $want" >/dev/null ||
			fail "$ls/$lf vs $rs/$rf: $output, not $want"
	done <<'TABLE'
42^41^.history = [h(41; "m1"), h(42; "m1")]^42^41^.history = [h(41; "m1"), h(42; "m1")]^0^{relation: "equal", local_serial: 42, remote_serial: 42, common_parent: 42}
44^43^.history = [h(41; "m1"), h(42; "m1"), h(43; "m2"), h(44; "m2")]^42^41^.history = [h(41; "m1"), h(42; "m1")]^0^{relation: "ahead", local_serial: 44, remote_serial: 42, common_parent: 42}
42^41^.history = [h(41; "m1"), h(42; "m1")]^44^43^.history = [h(41; "m1"), h(42; "m1"), h(43; "m2"), h(44; "m2")]^0^{relation: "behind", local_serial: 42, remote_serial: 44, common_parent: 42}
42^41^.history = [h(40; "m1"), h(41; "m1"), h(42; "machine-A")]^42^41^.history = [h(40; "m1"), h(41; "m1"), h(42; "machine-B")]^1^{relation: "diverged", local_serial: 42, remote_serial: 42, common_parent: 41}
42^41^.history = [h(41; "m1"), h(42; "machine-A")]^43^42^.history = [h(41; "m1"), h(42; "machine-B"), h(43; "machine-B")]^1^{relation: "diverged", local_serial: 42, remote_serial: 43, common_parent: 41}
142^141^.history = [range(93; 143) | h(.; "machine-A")]^42^41^.history = [range(1; 43) | h(.; "machine-B")]^1^{relation: "diverged", local_serial: 142, remote_serial: 42, common_parent: null}
TABLE
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

@test "compare --base: a side equal to the base is behind or ahead, however far the other went" {
	# B idle at 42 while A ran 100 more operations: the histories (50 entries)
	# no longer overlap, but the git merge base holds B's exact state.
	st 42 41 '.history = [range(1; 43) | h(.; "machine-B")]' > idle.json
	st 142 141 '.history = [range(93; 143) | h(.; "machine-A")]' > busy.json
	run --separate-stderr heimdal-lineage compare --local idle.json --remote busy.json --base idle.json
	expect_status 0
	expect_json '. == {relation: "behind", local_serial: 42, remote_serial: 142, common_parent: 42}'
	run --separate-stderr heimdal-lineage compare --local busy.json --remote idle.json --base idle.json
	expect_status 0
	expect_json '. == {relation: "ahead", local_serial: 142, remote_serial: 42, common_parent: 42}'
	# The base in the pair document on stdin does the same.
	run --separate-stderr bash -c 'jq -n --slurpfile l idle.json --slurpfile r busy.json \
		"{local: \$l[0], remote: \$r[0], base: \$l[0]}" | heimdal-lineage compare -c'
	expect_status 0
	[ "$output" = '{"relation":"behind","local_serial":42,"remote_serial":142,"common_parent":42}' ] ||
		fail "stdin pair"
	# Without the base it is what the histories alone say.
	run --separate-stderr heimdal-lineage compare --local idle.json --remote busy.json
	expect_status 1
	expect_json '.relation == "diverged" and .common_parent == null'
}

@test "compare --base: both moved on from the base -> diverged, the base the common parent" {
	st 42 41 '.history = [range(1; 43) | h(.; "machine-B")]' > base.json
	st 100 99 '.history = [range(51; 101) | h(.; "machine-B")]' > l.json
	st 142 141 '.history = [range(93; 143) | h(.; "machine-A")]' > r.json
	run --separate-stderr heimdal-lineage compare --local l.json --remote r.json --base base.json
	expect_status 1
	expect_json '. == {relation: "diverged", local_serial: 100, remote_serial: 142, common_parent: 42}'
	# A base of another lineage decides nothing.
	jq '.lineage.id = "lineage-other"' l.json > other.json
	run --separate-stderr heimdal-lineage compare --local l.json --remote r.json --base other.json
	expect_status 1
	expect_json '.relation == "diverged" and .common_parent == null'
	# The remote at the base, a local state whose history reaches back past
	# the base without its entry: it does not descend from the base (a pull
	# brought the base's commit, the state was written apart).
	st 42 41 '.history = [range(1; 43) | h(.; "machine-B")]' > base.json
	st 60 59 '.history = [range(11; 61) | h(.; "machine-A")]' > own.json
	run --separate-stderr heimdal-lineage compare --local own.json --remote base.json --base base.json
	expect_status 1
	expect_json '. == {relation: "diverged", local_serial: 60, remote_serial: 42, common_parent: null}'
	# The local state at the base: the remote's commit descends from it in
	# git, whatever its history kept (a resolve --use-local there drops ours).
	run --separate-stderr heimdal-lineage compare --local base.json --remote own.json --base base.json
	expect_status 0
	expect_json '. == {relation: "behind", local_serial: 42, remote_serial: 60, common_parent: 42}'
	# Overlapping histories still decide first: the spec's 42 vs 43 from 41.
	st 42 41 '.history = [h(41; "m1"), h(42; "machine-A")]' > l.json
	st 43 42 '.history = [h(41; "m1"), h(42; "machine-B"), h(43; "machine-B")]' > r.json
	st 41 40 '.history = [h(41; "m1")]' > base.json
	run --separate-stderr heimdal-lineage compare --local l.json --remote r.json --base base.json
	expect_status 1
	expect_json '. == {relation: "diverged", local_serial: 42, remote_serial: 43, common_parent: 41}'
	run --separate-stderr heimdal-lineage compare --local l.json --base base.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
}

@test "compare: a lineage holding nothing but its own init joins the other (day-one inits)" {
	# Two machines initialised against an empty repository: each started a
	# lineage; one holds only its own init (no git commit, no checksums).
	solo='.lineage.id = "lineage-b" | .lineage.serial = 2 | .lineage.parent_serial = 1
		| .lineage.git_commit = null | .lineage.machines = [.machine.id] | .checksums = {}
		| .history = [h(2; .machine.id) | .operation = "init"]'
	st 2 1 "$solo" > b.json
	st 4 3 '.lineage.id = "lineage-a" | .history = [h(2; "A") | .operation = "init", h(3; "A"), h(4; "A")]' > a.json
	run --separate-stderr heimdal-lineage compare --local b.json --remote a.json
	expect_status 0
	expect_json '. == {relation: "behind", local_serial: 2, remote_serial: 4, common_parent: null}'
	run --separate-stderr heimdal-lineage compare --local a.json --remote b.json
	expect_status 0
	expect_json '. == {relation: "ahead", local_serial: 4, remote_serial: 2, common_parent: null}'
	# Both only their own init: the local one joins the remote's.
	jq '.lineage.id = "lineage-c" | .machine.id = "C" | .history[0].machine_id = "C"' b.json > c.json
	run --separate-stderr heimdal-lineage compare --local c.json --remote b.json
	expect_status 0
	expect_json '.relation == "behind"'
	# Anything more is a lineage of its own: an init by another machine, a
	# git commit, a checksum, a second entry.
	for f in '.history[0].machine_id = "other"' '.lineage.git_commit = "abcd1234"' \
		'.checksums[".bashrc"] = sum(1)' '.history += [h(3; .machine.id)]'; do
		jq "$JQ_DEFS $f" b.json > x.json
		run --separate-stderr heimdal-lineage compare --local x.json --remote a.json
		expect_status 1
		expect_json '.relation == "unrelated" and .common_parent == null'
	done
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
