#!/usr/bin/env bats
# heimdal-merge: strategies, the spec's merge logic, three-way merges, report.

load helper
load states

setup() {
	setup_scratch
	cd "$BATS_TEST_TMPDIR"
}

@test "merge: --help exit 0; missing or unknown strategy exit 2, nothing on stdout" {
	run --separate-stderr heimdal-merge --help
	expect_status 0
	[[ "$output" == usage:\ heimdal-merge* ]] || fail "usage"
	st 42 41 > s.json
	run --separate-stderr heimdal-merge --local s.json --remote s.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"--strategy is required"* ]] || fail "message"
	run --separate-stderr heimdal-merge -s both --local s.json --remote s.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"--strategy: unknown strategy 'both'"* ]] || fail "message"
}

@test "merge: the spec's example (42/43, [A,B]+[B,C], 10:00/10:30) without a base" {
	st 42 41 '.lineage.machines = ["A", "B"] | .last_sync = "2024-01-15T10:00:00Z"
		| .history = [h(40; "A"), h(41; "A"), h(42; "A")] | .checksums[".bashrc"] = sum(1)' > l.json
	st 43 41 '.lineage.machines = ["B", "C"] | .last_sync = "2024-01-15T10:30:00Z"
		| .history = [h(40; "A"), h(41; "A"), h(42; "B"), h(43; "C")] | .checksums[".bashrc"] = sum(2)
		| .checksums[".zshrc"] = sum(3) | .active_profile = "work"' > r.json
	run --separate-stderr heimdal-merge --strategy merge --local l.json --remote r.json --report rep.json
	expect_status 0
	expect_json '.lineage.serial == 43 and .lineage.machines == ["A", "B", "C"]'
	expect_json '.last_sync == "2024-01-15T10:30:00Z" and .last_apply == "2024-01-15T10:35:00Z"'
	expect_json '[.history[] | [.serial, .machine_id]] == [[40, "A"], [41, "A"], [42, "A"], [42, "B"], [43, "C"]]'
	expect_json '.checksums == {".bashrc": ("0" * 31 + "2"), ".vimrc": "098f6bcd4621d373cade4e832627b4f6", ".zshrc": ("0" * 31 + "3")}'
	# Machine-local fields stay local.
	expect_json '.active_profile == "personal" and .machine.hostname == "macbook-pro"'
	jq -e '.strategy == "merge" and .relation == "diverged" and .machines_combined == 3
		and .conflicts_resolved == 3 and .serial == 43
		and ([.conflicts[].type] == ["serial_divergence", "profile_mismatch", "file_drift"])
		and (.conflicts[2] | .path == ".bashrc" and .local == ("0" * 31 + "1")
			and .remote == ("0" * 31 + "2") and .winner == "remote")' rep.json
}

@test "merge: a local side that is ahead keeps its newer checksums" {
	st 43 42 '.history = [h(42; "A"), h(43; "A")] | .checksums[".bashrc"] = sum(5)' > l.json
	st 42 41 '.history = [h(42; "A")]' > r.json
	run heimdal-merge -s merge --local l.json --remote r.json
	expect_status 0
	expect_json '.checksums[".bashrc"] == ("0" * 31 + "5") and .lineage.serial == 43'
}

@test "merge three-way: each side changed different files, both changes survive" {
	st 41 40 '.checksums = {a: sum(1), b: sum(2), c: sum(3)}' > base.json
	st 42 41 '.history = [h(42; "A")] | .checksums = {a: sum(11), b: sum(2), c: sum(3), n: sum(7)}' > l.json
	st 42 41 '.history = [h(42; "B")] | .checksums = {a: sum(1), b: sum(22), c: sum(3)}' > r.json
	run heimdal-merge -s merge --local l.json --remote r.json --base base.json --report rep.json
	expect_status 0
	expect_json '.checksums == {a: ("0" * 30 + "11"), b: ("0" * 30 + "22"), c: ("0" * 31 + "3"), n: ("0" * 31 + "7")}'
	jq -e '.conflicts_resolved == 1 and ([.conflicts[] | select(.type == "file_drift")] == [])' rep.json
}

@test "merge three-way: the same file changed on both sides: remote wins, on record" {
	st 41 40 '.checksums = {a: sum(1)}' > base.json
	st 42 41 '.history = [h(42; "A")] | .checksums = {a: sum(11)}' > l.json
	st 42 41 '.history = [h(42; "B")] | .checksums = {a: sum(21)}' > r.json
	run heimdal-merge -s merge --local l.json --remote r.json --base base.json --report rep.json
	expect_status 0
	expect_json '.checksums == {a: ("0" * 30 + "21")}'
	jq -e '[.conflicts[] | select(.type == "file_drift") | del(.description, .type, .severity)]
		== [{path: "a", local: ("0" * 30 + "11"), remote: ("0" * 30 + "21"), base: ("0" * 31 + "1"), winner: "remote"}]' rep.json
	# Changed the same way: no conflict at all.
	cp l.json r2.json
	run heimdal-merge -s merge --local l.json --remote r2.json --base base.json --report rep.json
	expect_status 0
	jq -e '[.conflicts[] | select(.type == "file_drift")] == []' rep.json
}

@test "merge three-way: deleted files" {
	st 41 40 '.checksums = {a: sum(1), b: sum(2), c: sum(3)}' > base.json
	# local deleted a (remote unchanged) and c (remote changed it); remote deleted b.
	st 42 41 '.history = [h(42; "A")] | .checksums = {b: sum(2)}' > l.json
	st 42 41 '.history = [h(42; "B")] | .checksums = {a: sum(1), c: sum(33)}' > r.json
	run heimdal-merge -s merge --local l.json --remote r.json --base base.json --report rep.json
	expect_status 0
	expect_json '.checksums == {c: ("0" * 30 + "33")}'
	jq -e '[.conflicts[] | select(.type == "file_drift") | del(.description, .type, .severity)]
		== [{path: "c", local: null, remote: ("0" * 30 + "33"), base: ("0" * 31 + "3"), winner: "remote"}]' rep.json
	heimdal-conflicts --local l.json --remote r.json --base base.json |
		jq -e --slurpfile r rep.json '.conflicts == ($r[0].conflicts | map(del(.winner)))' 
	# Changed locally, deleted remotely: the remote's deletion wins, on record.
	st 42 41 '.history = [h(42; "A")] | .checksums = {a: sum(1), b: sum(2), c: sum(44)}' > l.json
	st 42 41 '.history = [h(42; "B")] | .checksums = {a: sum(1), b: sum(2)}' > r.json
	run heimdal-merge -s merge --local l.json --remote r.json --base base.json --report rep.json
	expect_status 0
	expect_json '.checksums | keys == ["a", "b"]'
	jq -e '[.conflicts[] | select(.type == "file_drift") | del(.description, .type, .severity)]
		== [{path: "c", local: ("0" * 30 + "44"), remote: null, base: ("0" * 31 + "3"), winner: "remote"}]' rep.json
}

@test "merge: use-local and use-remote (this machine's block is kept)" {
	st 42 41 '.history = [h(42; "A")] | .checksums[".bashrc"] = sum(1)' > l.json
	st 43 41 '.history = [h(43; "B")] | .checksums[".bashrc"] = sum(2) | .machine.id = "other" | .machine.hostname = "other-host"' > r.json
	run --separate-stderr heimdal-merge -s use-local --local l.json --remote r.json --report rep.json
	expect_status 0
	diff <(jq -S . l.json) <(printf '%s\n' "$output" | jq -S .) || fail "not the local state"
	jq -e '[.conflicts[] | select(.type == "file_drift") | del(.description, .type, .severity)]
		== [{path: ".bashrc", local: ("0" * 31 + "1"), remote: ("0" * 31 + "2"), winner: "local"}]' rep.json
	run --separate-stderr heimdal-merge -s use-remote --local l.json --remote r.json
	expect_status 0
	diff <(jq -S '.machine = $l[0].machine' --slurpfile l l.json r.json) <(printf '%s\n' "$output" | jq -S .) ||
		fail "not the remote state"
}

@test "merge --report writes its file conflicts as use-remote's report has them, key for key, byte for byte" {
	# Diverged without a base: every differing file (a quote and a backslash in one path).
	st 42 41 '.history = [h(42; "A")] | .checksums = {".b": sum(1), "q\"\\x": sum(2), ".a": sum(3), ".same": sum(9)}' > l.json
	st 42 41 '.history = [h(42; "B")] | .checksums = {".a": sum(4), "q\"\\x": sum(5), ".b": sum(6), ".same": sum(9)}' > r.json
	for flag in -c ""; do
		heimdal-merge $flag -s merge --local l.json --remote r.json --report m.json >/dev/null
		heimdal-merge $flag -s use-remote --local l.json --remote r.json --report u.json >/dev/null
		# The merge writes them itself; use-remote builds them as objects first.
		diff <(jq -c '.conflicts[] | select(.type == "file_drift")' m.json) \
			<(jq -c '.conflicts[] | select(.type == "file_drift")' u.json) || fail "objects differ ($flag)"
		jq -e '[.conflicts[] | select(.type == "file_drift") | .path] == [".a", ".b", "q\"\\x"]' m.json >/dev/null ||
			fail "not in path order"
		# Printed exactly as the generic writer prints the same document.
		diff m.json <(heimdal state query $flag . m.json) || fail "formatting differs ($flag)"
	done
	# Three-way: the base is on record too.
	st 41 40 '.checksums = {a: sum(1), b: sum(2)}' > base.json
	st 42 41 '.history = [h(42; "A")] | .checksums = {a: sum(11)}' > l.json
	st 42 41 '.history = [h(42; "B")] | .checksums = {a: sum(21), b: sum(22)}' > r.json
	heimdal-merge -s merge --local l.json --remote r.json --base base.json --report m.json >/dev/null
	diff m.json <(heimdal state query . m.json) || fail "formatting differs (three-way)"
	jq -e '[.conflicts[] | select(.type == "file_drift") | [.path, .base != null, .winner]]
		== [["a", true, "remote"], ["b", true, "remote"]]' m.json >/dev/null || fail "$(cat m.json)"
}

@test "merge: manual prints nothing and exits 1; the report lists the conflicts" {
	st 42 41 '.history = [h(42; "A")]' > l.json
	st 42 41 '.history = [h(42; "B")]' > r.json
	run --separate-stderr heimdal-merge -s manual --local l.json --remote r.json --report rep.json
	expect_status 1
	[ -z "$output" ] || fail "stdout"
	jq -e '.strategy == "manual" and .conflicts_resolved == 0 and (.conflicts | length) == 1' rep.json
}

@test "merge: states of different lineages are not merged, exit 1" {
	st 42 41 > l.json
	st 42 41 '.lineage.id = "lineage-zzz"' > r.json
	run --separate-stderr heimdal-merge -s merge --local l.json --remote r.json
	expect_status 1
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"cannot merge states of different lineages"* ]] || fail "message"
}

@test "merge: in a pipeline: jq | heimdal-merge | heimdal-lineage bump | jq" {
	st 42 41 '.history = [h(41; "A"), h(42; "A")] | .lineage.machines = ["A"]' > l.json
	st 42 41 '.history = [h(41; "A"), h(42; "B")] | .lineage.machines = ["B"]' > r.json
	pair l.json r.json > p.json
	run bash -c 'heimdal-merge -s merge -c < p.json | heimdal-lineage bump --op resolve -c |
		jq -c "[.lineage.serial, .lineage.parent_serial, (.lineage.machines | length), .history[-1].operation]"'
	expect_status 0
	[ "$output" = '[43,42,3,"resolve"]' ] || fail "pipeline"
	# The resolved state is ahead of both sides.
	heimdal-merge -s merge --local l.json --remote r.json | heimdal-lineage bump --op resolve > m.json
	run heimdal-lineage compare --local m.json --remote r.json
	expect_status 0
	expect_json '.relation == "ahead"'
	run heimdal-lineage compare --local m.json --remote l.json
	expect_status 0
	expect_json '.relation == "ahead"'
}

@test "merge: malformed input is exit 2, nothing on stdout, no report written" {
	st 42 41 > s.json
	jq '.lineage.serial = "x"' s.json > bad.json
	run --separate-stderr heimdal-merge -s merge --local s.json --remote bad.json --report rep.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[ "$stderr" = "heimdal-merge: error: bad.json: .lineage.serial: expected a non-negative integer, got string" ] ||
		fail "message"
	[ ! -e rep.json ] || fail "report written"
	jq '.version = 3' s.json > newer.json
	run --separate-stderr heimdal-merge -s merge --local s.json --remote newer.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"newer.json: .version: state version 3 was written by a newer heimdal"* ]] || fail "message"
}

@test "merge: property check over generated pairs: no entry, machine or change lost" {
	python3 - "$FIXTURES/v2-spec.json" <<-'EOF'
	import json, random, sys
	random.seed(7)
	base = json.load(open(sys.argv[1]))
	def entry(s, m, t):
	    return {"operation": "apply", "timestamp": "2024-01-%02dT%02d:%02d:00Z" % (1 + t // 1440, t // 60 % 24, t % 60),
	            "machine_id": m, "user": "john", "serial": s}
	for n in range(25):
	    shared = random.randint(1, 40)
	    extra = [random.randint(1, 40), random.randint(1, 40)]
	    if n % 3:
	        extra[n % 3 - 1] = 0
	    t = 0
	    common = []
	    for s in range(1, shared + 1):
	        t += 1; common.append(entry(s, "m0", t))
	    sides = []
	    for side in range(2):
	        h = list(common); tt = 10000 * (side + 1)
	        for s in range(shared + 1, shared + 1 + extra[side]):
	            tt += 1; h.append(entry(s, "m%d" % (side + 1), tt))
	        st = json.loads(json.dumps(base))
	        st["history"] = h[-50:]
	        st["lineage"]["serial"] = h[-1]["serial"] if h else 1
	        st["lineage"]["parent_serial"] = max(0, st["lineage"]["serial"] - 1)
	        st["lineage"]["machines"] = random.sample(["m0", "m1", "m2", "m3", "m4"], random.randint(1, 5))
	        st["checksums"] = {".f%d" % random.randint(0, 30): "%032x" % random.getrandbits(128) for _ in range(20)}
	        sides.append(st)
	    json.dump({"local": sides[0], "remote": sides[1]}, open("pair%02d.json" % n, "w"))
	EOF
	seen=
	for p in pair*.json; do
		heimdal-merge -s merge --report "r-$p" < "$p" > "m-$p" || fail "merge failed on $p"
		# The report's conflicts are exactly heimdal-conflicts' answer.
		heimdal-conflicts -c < "$p" | jq -e --slurpfile r "r-$p" '.conflicts == ($r[0].conflicts | map(del(.winner)))' >/dev/null ||
			fail "report and heimdal-conflicts disagree on $p"
		# Valid V2: heimdal-migrate validates a V2 state and passes it through.
		heimdal-migrate "m-$p" > /dev/null || fail "invalid merged state from $p"
		rel=$(heimdal-lineage compare < "$p" | jq -r .relation)
		jq -e --slurpfile m "m-$p" --arg rel "$rel" '
			.local as $l | .remote as $r | $m[0] as $o
			| (($l.history + $r.history) | unique | sort_by(.serial, .timestamp) | .[-50:]) as $want
			| ($want - $o.history) == []
			and ($o.history | length) <= 50
			and (($l.lineage.machines + $r.lineage.machines) - $o.lineage.machines) == []
			and ($o.lineage.serial == ([$l.lineage.serial, $r.lineage.serial] | max))
			and (if $rel == "ahead" then $l else $r end) as $newer
			| ([$newer.checksums | to_entries[] | $o.checksums[.key] == .value] | all)
			and ([$l.checksums, $r.checksums | keys[] | in($o.checksums)] | all)
		' "$p" > /dev/null || fail "property failed for $p"
		seen="$seen $rel"
	done
	# The generated pairs cover more than one relation.
	[[ "$seen" == *diverged* && ( "$seen" == *ahead* || "$seen" == *behind* ) ]] || fail "relations seen: $seen"
}
