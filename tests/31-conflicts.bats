#!/usr/bin/env bats
# heimdal-conflicts: every conflict type, file drift two- and three-way, --diff.

load helper
load states

setup() {
	setup_scratch
	cd "$BATS_TEST_TMPDIR"
}

@test "conflicts: --help on stdout exit 0; a bad flag exit 2" {
	run --separate-stderr heimdal-conflicts -h
	expect_status 0
	[[ "$output" == usage:\ heimdal-conflicts* ]] || fail "usage"
	run --separate-stderr heimdal-conflicts --nope
	expect_status 2
	[ -z "$output" ] || fail "stdout"
}

@test "conflicts: none between equal states, exit 0" {
	st 42 41 > l.json
	run --separate-stderr heimdal-conflicts --local l.json --remote l.json
	expect_status 0
	expect_json '.relation == "equal" and .conflicts == []'
}

@test "conflicts: the spec's example, serial divergence and profile mismatch, word for word" {
	st 42 41 '.history = [h(41; "m1"), h(42; "machine-A")]' > l.json
	st 42 41 '.history = [h(41; "m1"), h(42; "machine-B")] | .active_profile = "work"' > r.json
	run --separate-stderr heimdal-conflicts --local l.json --remote r.json
	expect_status 1
	expect_json '.relation == "diverged" and (.conflicts | length) == 2'
	expect_json '.conflicts[0] == {type: "serial_divergence", severity: "high",
		description: "State diverged: local serial 42 vs remote serial 42 (common parent: 41)",
		local_serial: 42, remote_serial: 42, common_parent: 41}'
	expect_json '.conflicts[1] == {type: "profile_mismatch", severity: "medium",
		description: "Active profile differs: local '\''personal'\'' vs remote '\''work'\''",
		local: "personal", remote: "work"}'
}

@test "conflicts: 42 vs 43 from 41 with a file changed on both sides" {
	st 42 41 '.history = [h(41; "m1"), h(42; "A")] | .checksums[".bashrc"] = sum(1)' > l.json
	st 43 42 '.history = [h(41; "m1"), h(42; "B"), h(43; "B")] | .checksums[".bashrc"] = sum(2)' > r.json
	run heimdal-conflicts --local l.json --remote r.json
	expect_status 1
	expect_json '[.conflicts[].description] == [
		"State diverged: local serial 42 vs remote serial 43 (common parent: 41)",
		"File '\''.bashrc'\'' has been modified"]'
	expect_json '.conflicts[1] | .type == "file_drift" and .severity == "low" and .path == ".bashrc"
		and .local == ("0" * 31 + "1") and .remote == ("0" * 31 + "2")'
}

@test "conflicts: a remote that is simply ahead is an update, not drift" {
	st 42 41 '.history = [h(41; "m1"), h(42; "m1")]' > l.json
	st 43 42 '.history = [h(41; "m1"), h(42; "m1"), h(43; "m2")] | .checksums[".bashrc"] = sum(9)' > r.json
	run heimdal-conflicts --local l.json --remote r.json
	expect_status 0
	expect_json '.relation == "behind" and .conflicts == []'
}

@test "conflicts: path mismatch (high) beside a divergence" {
	st 42 41 '.history = [h(41; "m1"), h(42; "A")]' > l.json
	st 42 41 '.history = [h(41; "m1"), h(42; "B")] | .dotfiles_path = "/home/john/.dotfiles"' > r.json
	run heimdal-conflicts --local l.json --remote r.json
	expect_status 1
	expect_json '.conflicts[1:] == [{type: "path_mismatch", severity: "high",
		description: "Dotfiles path differs: local '\''/Users/john/.dotfiles'\'' vs remote '\''/home/john/.dotfiles'\''",
		local: "/Users/john/.dotfiles", remote: "/home/john/.dotfiles"}]'
}

@test "conflicts: machines in step with their own profile, path and files have none, exit 0" {
	# Each machine's profile, path and checksums are its own: equal, behind
	# or ahead, they are no conflict on their own.
	own='.active_profile = "work" | .dotfiles_path = "/home/john/.dotfiles" | .checksums[".bashrc"] = sum(7)'
	st 42 41 '.history = [h(41; "m1"), h(42; "m1")]' > l.json
	st 42 41 ".history = [h(41; \"m1\"), h(42; \"m1\")] | $own" > r.json
	st 43 42 ".history = [h(41; \"m1\"), h(42; \"m1\"), h(43; \"m2\")] | $own" > r2.json
	st 41 40 '.history = [h(41; "m1")] | .checksums[".bashrc"] = sum(1)' > base.json
	for remote in r.json r2.json; do
		run --separate-stderr heimdal-conflicts --local l.json --remote "$remote" --base base.json
		expect_status 0
		expect_json '.conflicts == []'
		run --separate-stderr heimdal-conflicts --local "$remote" --remote l.json
		expect_status 0
		expect_json '.conflicts == []'
	done
	run --separate-stderr heimdal-conflicts --local l.json --remote r2.json
	expect_json '.relation == "behind"'
}

@test "conflicts: a side equal to the git merge base is behind, not 'no common parent'" {
	st 42 41 '.history = [range(1; 43) | h(.; "machine-B")] | .active_profile = "work"' > idle.json
	st 142 141 '.history = [range(93; 143) | h(.; "machine-A")] | .checksums[".bashrc"] = sum(9)' > busy.json
	run --separate-stderr heimdal-conflicts --local idle.json --remote busy.json --base idle.json
	expect_status 0
	expect_json '. == {relation: "behind", local_serial: 42, remote_serial: 142, common_parent: 42, conflicts: []}'
	run --separate-stderr heimdal-conflicts --local idle.json --remote busy.json
	expect_status 1
	expect_json '.conflicts[0].description == "State diverged: local serial 42 vs remote serial 142 (no common parent)"'
}

@test "conflicts: a day-one lineage holding only its own init joins, no lineage mismatch" {
	st 2 1 '.lineage.id = "lineage-b" | .lineage.git_commit = null | .checksums = {}
		| .dotfiles_path = "/home/b/.dotfiles"
		| .history = [h(2; .machine.id) | .operation = "init"]' > b.json
	st 4 3 '.lineage.id = "lineage-a" | .history = [h(2; "A") | .operation = "init", h(3; "A"), h(4; "A")]' > a.json
	run --separate-stderr heimdal-conflicts --local b.json --remote a.json
	expect_status 0
	expect_json '. == {relation: "behind", local_serial: 2, remote_serial: 4, common_parent: null, conflicts: []}'
}

@test "conflicts: lineage mismatch (high) and relation unrelated" {
	st 42 41 > l.json
	st 42 41 '.lineage.id = "lineage-zzz"' > r.json
	run heimdal-conflicts --local l.json --remote r.json
	expect_status 1
	expect_json '.relation == "unrelated"'
	expect_json '.conflicts == [{type: "lineage_mismatch", severity: "high",
		description: "State lineage differs: local '\''lineage-abc123'\'' vs remote '\''lineage-zzz'\''",
		local: "lineage-abc123", remote: "lineage-zzz"}]'
}

@test "conflicts: version mismatch (high) for a state newer than this heimdal" {
	st 42 41 > l.json
	st 43 42 '.version = 3 | .new_field = {}' > r.json
	run --separate-stderr heimdal-conflicts --local l.json --remote r.json
	expect_status 1
	expect_json '.conflicts == [{type: "version_mismatch", severity: "high",
		description: "Remote state version 3 is newer than this heimdal supports (2)",
		local: 2, remote: 3, supported: 2}]'
}

@test "conflicts: three-way drift only where both sides changed a file differently" {
	st 41 40 '.checksums = {a: sum(1), b: sum(2), c: sum(3), d: sum(4), e: sum(5)}' > base.json
	# local: a changed, c changed, d deleted, e changed.  remote: b changed,
	# c changed differently, d changed, e changed the same way.
	st 42 41 '.history = [h(42; "A")] | .checksums = {a: sum(11), b: sum(2), c: sum(13), e: sum(15)}' > l.json
	st 42 41 '.history = [h(42; "B")] | .checksums = {a: sum(1), b: sum(22), c: sum(23), d: sum(24), e: sum(15)}' > r.json
	run heimdal-conflicts --local l.json --remote r.json --base base.json
	expect_status 1
	expect_json '[.conflicts[] | select(.type == "file_drift") | .path] == ["c", "d"]'
	expect_json '.conflicts[] | select(.path == "d") | .local == null and .remote == ("0" * 30 + "24") and .base == ("0" * 31 + "4")'
	# Without the base every differing file of a diverged pair is drift.
	run heimdal-conflicts --local l.json --remote r.json
	expect_status 1
	expect_json '[.conflicts[] | select(.type == "file_drift") | .path] == ["a", "b", "c"]'
}

@test "conflicts: composed with jq on stdin, --diff lists every differing field" {
	st 42 41 '.history = [h(42; "A")] | .lineage.machines = ["A", "B"]' > l.json
	st 43 42 '.history = [h(42; "B"), h(43; "B")] | .lineage.machines = ["B", "C"] | .checksums[".zshrc"] = sum(3)' > r.json
	run bash -c 'jq -n --slurpfile l l.json --slurpfile r r.json "{local:\$l[0], remote:\$r[0]}" |
		heimdal-conflicts -c | jq -c "[.conflicts[].type]"'
	expect_status 0
	[ "$output" = '["serial_divergence"]' ] || fail "types"
	run --separate-stderr heimdal-conflicts --diff --local l.json --remote r.json
	expect_status 1
	expect_json '[.differences[].field] == [".lineage.serial", ".lineage.parent_serial", ".lineage.machines", ".history", ".checksums[\".zshrc\"]"]'
	expect_json '.differences[2] == {field: ".lineage.machines", only_local: ["A"], only_remote: ["C"]}'
	expect_json '.differences[4] | has("local") | not'
	run heimdal-conflicts --diff --local l.json --remote l.json
	expect_status 0
	expect_json '.differences == []'
}

@test "conflicts: malformed input: exit 2, field named, nothing on stdout" {
	st 42 41 > s.json
	run --separate-stderr bash -c 'jq -n --slurpfile r s.json "{remote: \$r[0]}" | heimdal-conflicts'
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[ "$stderr" = "heimdal-conflicts: error: <stdin>: .local: missing" ] || fail "message"
	run --separate-stderr bash -c 'jq -n --slurpfile r s.json "{local: [1], remote: \$r[0]}" | heimdal-conflicts'
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[ "$stderr" = "heimdal-conflicts: error: <stdin>: .local: expected an object, got array" ] || fail "message"
	run --separate-stderr bash -c 'jq -n --slurpfile r s.json "{local: \$r[0], remote: (\$r[0] | .lineage.serial = \"42\")}" | heimdal-conflicts'
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[ "$stderr" = "heimdal-conflicts: error: <stdin>: .remote.lineage.serial: expected a non-negative integer, got string" ] ||
		fail "message"
	run --separate-stderr bash -c 'echo "[]" | heimdal-conflicts'
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"<stdin>: expected an object"* ]] || fail "message"
	run --separate-stderr bash -c 'printf "{\"local\":" | heimdal-conflicts'
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == "heimdal-conflicts: error: <stdin>: invalid JSON: "* ]] || fail "message"
}
