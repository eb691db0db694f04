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
	run --separate-stderr heimdal-merge --strategy both --local s.json --remote s.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"--strategy: unknown strategy 'both'"* ]] || fail "message"
}

@test "merge: the spec's example (42/43, [A,B]+[B,C]) without a base; this machine's facts stay its own" {
	st 42 41 '.lineage.machines = ["A", "B"] | .last_sync = "2024-01-15T10:00:00Z"
		| .history = [h(40; "A"), h(41; "A"), h(42; "A")] | .checksums[".bashrc"] = sum(1)' > l.json
	st 43 41 '.lineage.machines = ["B", "C"] | .last_sync = "2024-01-15T10:30:00Z" | .last_apply = "2024-01-15T11:00:00Z"
		| .history = [h(40; "A"), h(41; "A"), h(42; "B"), h(43; "C")] | .checksums[".bashrc"] = sum(2)
		| .checksums[".zshrc"] = sum(3) | .active_profile = "work" | .dotfiles_path = "/home/b/.dotfiles"
		| .repo_url = "git@example.invalid:b.git" | .machine.id = "other" | .machine.hostname = "other-host"' > r.json
	run --separate-stderr heimdal-merge --strategy merge --local l.json --remote r.json --report rep.json
	expect_status 0
	expect_json '.lineage.serial == 43 and .lineage.machines == ["A", "B", "C"]'
	expect_json '[.history[] | [.serial, .machine_id]] == [[40, "A"], [41, "A"], [42, "A"], [42, "B"], [43, "C"]]'
	# Per machine: the checksums (what this machine deployed), profile, path,
	# times and identity are the local ones, never the other machine's.
	jq -e --slurpfile l l.json '. as $o | $l[0] | all(.machine, .active_profile, .dotfiles_path, .repo_url,
		.last_sync, .last_apply, .checksums; . != null)
		and ([$o.machine, $o.active_profile, $o.dotfiles_path, $o.repo_url, $o.last_sync, $o.last_apply, $o.checksums]
		  == [.machine, .active_profile, .dotfiles_path, .repo_url, .last_sync, .last_apply, .checksums])' <<<"$output" ||
		fail "per-machine facts taken from the remote"
	jq -e '.strategy == "merge" and .relation == "diverged" and .machines_combined == 3
		and .conflicts_resolved == 3 and .serial == 43
		and ([.conflicts[].type] == ["serial_divergence", "profile_mismatch", "path_mismatch"])' rep.json
}

@test "merge: every strategy keeps this machine's facts and takes no checksum from the remote, with or without a base" {
	st 41 40 '.checksums = {a: sum(1), b: sum(2)}' > base.json
	st 42 41 '.history = [h(42; "A")] | .checksums = {a: sum(11), b: sum(2)} | .last_apply = "2024-01-15T09:00:00Z"' > l.json
	st 43 41 '.history = [h(42; "B"), h(43; "B")] | .checksums = {a: sum(21), c: sum(3)} | .active_profile = "work"
		| .dotfiles_path = "/elsewhere" | .last_apply = "2024-01-16T09:00:00Z" | .last_sync = "2024-01-16T09:00:00Z"
		| .machine.id = "other"' > r.json
	for s in merge use-local use-remote; do
		for b in "" "--base base.json"; do
			run --separate-stderr heimdal-merge --strategy "$s" --local l.json --remote r.json $b
			expect_status 0
			jq -e --slurpfile l l.json '[.checksums, .active_profile, .dotfiles_path, .last_apply, .last_sync, .machine, .repo_url]
				== ($l[0] | [.checksums, .active_profile, .dotfiles_path, .last_apply, .last_sync, .machine, .repo_url])' \
				<<<"$output" >/dev/null || fail "$s $b: $output"
		done
	done
	# The shared facts: use-remote takes the remote's lineage and history.
	run --separate-stderr heimdal-merge --strategy use-remote --local l.json --remote r.json
	jq -e --slurpfile r r.json '[.lineage, .history] == ($r[0] | [.lineage, .history])' <<<"$output"
	# A remote state without a member this machine has cannot remove it.
	jq 'del(.last_sync)' l.json > l2.json
	run --separate-stderr heimdal-merge --strategy use-remote --local l2.json --remote r.json
	expect_status 0
	expect_json 'has("last_sync") | not'
}

@test "merge: use-local is the local state; the report of any strategy holds no file conflict" {
	st 42 41 '.history = [h(42; "A")] | .checksums[".bashrc"] = sum(1)' > l.json
	st 43 41 '.history = [h(43; "B")] | .checksums[".bashrc"] = sum(2) | .machine.id = "other" | .machine.hostname = "other-host"' > r.json
	run --separate-stderr heimdal-merge --strategy use-local --local l.json --remote r.json --report rep.json
	expect_status 0
	diff <(jq -S . l.json) <(printf '%s\n' "$output" | jq -S .) || fail "not the local state"
	jq -e '[.conflicts[] | select(.type == "file_drift")] == [] and .strategy == "use-local"' rep.json
	for flag in -c ""; do
		heimdal-merge $flag --strategy merge --local l.json --remote r.json --report m.json >/dev/null
		# Printed exactly as the generic writer prints the same document.
		diff m.json <(heimdal state query $flag . m.json) || fail "formatting differs ($flag)"
	done
}

@test "merge: manual prints nothing and exits 1; the report lists the conflicts" {
	st 42 41 '.history = [h(42; "A")]' > l.json
	st 42 41 '.history = [h(42; "B")]' > r.json
	run --separate-stderr heimdal-merge --strategy manual --local l.json --remote r.json --report rep.json
	expect_status 1
	[ -z "$output" ] || fail "stdout"
	jq -e '.strategy == "manual" and .conflicts_resolved == 0 and (.conflicts | length) == 1' rep.json
}

@test "merge: states of different lineages are not merged, exit 1" {
	st 42 41 > l.json
	st 42 41 '.lineage.id = "lineage-zzz"' > r.json
	run --separate-stderr heimdal-merge --strategy merge --local l.json --remote r.json
	expect_status 1
	[ -z "$output" ] || fail "stdout"
	[[ "$stderr" == *"cannot merge states of different lineages"* ]] || fail "message"
}

@test "merge: in a pipeline: jq | heimdal-merge | heimdal-lineage bump | jq" {
	st 42 41 '.history = [h(41; "A"), h(42; "A")] | .lineage.machines = ["A"]' > l.json
	st 42 41 '.history = [h(41; "A"), h(42; "B")] | .lineage.machines = ["B"]' > r.json
	pair l.json r.json > p.json
	run bash -c 'heimdal-merge --strategy merge -c < p.json | heimdal-lineage bump --op resolve -c |
		jq -c "[.lineage.serial, .lineage.parent_serial, (.lineage.machines | length), .history[-1].operation]"'
	expect_status 0
	[ "$output" = '[43,42,3,"resolve"]' ] || fail "pipeline"
	# The resolved state is ahead of both sides.
	heimdal-merge --strategy merge --local l.json --remote r.json | heimdal-lineage bump --op resolve > m.json
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
	run --separate-stderr heimdal-merge --strategy merge --local s.json --remote bad.json --report rep.json
	expect_status 2
	[ -z "$output" ] || fail "stdout"
	[ "$stderr" = "heimdal-merge: error: bad.json: .lineage.serial: expected a non-negative integer, got string" ] ||
		fail "message"
	[ ! -e rep.json ] || fail "report written"
	jq '.version = 3' s.json > newer.json
	run --separate-stderr heimdal-merge --strategy merge --local s.json --remote newer.json
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
		heimdal-merge --strategy merge --report "r-$p" < "$p" > "m-$p" || fail "merge failed on $p"
		# The report's conflicts are exactly heimdal-conflicts' answer.
		heimdal-conflicts -c < "$p" | jq -e --slurpfile r "r-$p" '(.conflicts | map(select(.type != "file_drift"))) == $r[0].conflicts' >/dev/null ||
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
			and $o.checksums == $l.checksums
		' "$p" > /dev/null || fail "property failed for $p"
		seen="$seen $rel"
	done
	# The generated pairs cover more than one relation.
	[[ "$seen" == *diverged* && ( "$seen" == *ahead* || "$seen" == *behind* ) ]] || fail "relations seen: $seen"
}
