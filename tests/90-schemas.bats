#!/usr/bin/env bats
# The JSON Schemas in share/schema describe what the tools really print.

load helper

SCHEMAS="$BATS_TEST_DIRNAME/../share/schema"
validate() { "$BATS_TEST_DIRNAME/validate-schema" "$SCHEMAS/$1.schema.json" "${2:-}"; }

@test "every schema is itself a valid JSON Schema" {
	for s in "$SCHEMAS"/*.schema.json; do
		jq -e '."$schema" and .title' "$s" >/dev/null || fail "$s"
		"$BATS_TEST_DIRNAME/validate-schema" "$s" --self || fail "$s is not a valid schema"
	done
}

@test "the fixtures validate: v1 as state V1, the spec's sample as state V2" {
	validate state-v1 "$FIXTURES/v1.json"
	validate state-v2 "$FIXTURES/v2-spec.json"
}

@test "heimdal-migrate's output validates as state V2" {
	heimdal-migrate "$FIXTURES/v1.json" >"$BATS_TEST_TMPDIR/v2.json"
	validate state-v2 "$BATS_TEST_TMPDIR/v2.json"
}

@test "the V2 schema rejects what the validator rejects" {
	for filter in '.lineage.serial = "42"' '.checksums["../x"] = "5d41402abc4b2a76b9719d911017c592"' \
		'.checksums["/etc/passwd"] = "5d41402abc4b2a76b9719d911017c592"' '.checksums.a = "XYZ"' \
		'del(.machine)' '.version = 3' '.history[0].timestamp = "yesterday"'; do
		jq "$filter" "$FIXTURES/v2-spec.json" >"$BATS_TEST_TMPDIR/bad.json"
		run validate state-v2 "$BATS_TEST_TMPDIR/bad.json"
		[ "$status" -eq 1 ] || fail "schema accepted: $filter"
		cp "$BATS_TEST_TMPDIR/bad.json" "$HEIMDAL_HOME/state.json"
		run heimdal state version
		[ "$status" -eq 2 ] || fail "validator accepted: $filter"
	done
}

# The other documents of heimdal.7, from the tools' real output.

load states
load remote-lock

setup() {
	setup_scratch
	cd "$BATS_TEST_TMPDIR"
	sleep 600 3>&- &
	HOLDER=$!
}

teardown() {
	kill "$HOLDER" 2>/dev/null || true
}

# valid SCHEMA: the document in $output validates against SCHEMA.
valid() {
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/doc.json"
	validate "$1" "$BATS_TEST_TMPDIR/doc.json" || fail "not a valid $1: $output"
}

# reject SCHEMA FILE FILTER...: each jq FILTER applied to FILE gives a
# document the schema refuses, and FILE itself is accepted.
reject() {
	local schema=$1 doc=$2 filter
	shift 2
	validate "$schema" "$doc" || fail "$doc is not a valid $schema"
	for filter in "$@"; do
		jq "$filter" "$doc" >"$BATS_TEST_TMPDIR/bad.json" || fail "jq: $filter"
		run validate "$schema" "$BATS_TEST_TMPDIR/bad.json"
		[ "$status" -eq 1 ] || fail "$schema accepted: $filter"
	done
}

# Local 42 and remote 43 from 41 on two machines, a file changed on both
# sides, another changed on one; the base they share.
diverged_pair() {
	st 41 40 '.history = [h(41; "m1")] | .checksums = {".bashrc": sum(1), ".vimrc": sum(2)}' >base.json
	st 42 41 '.history = [h(41; "m1"), h(42; "A")] | .lineage.machines = ["A"]
		| .checksums = {".bashrc": sum(11), ".vimrc": sum(2)}' >l.json
	st 43 42 '.history = [h(41; "m1"), h(42; "B"), h(43; "B")] | .lineage.machines = ["B"]
		| .checksums = {".bashrc": sum(21), ".vimrc": sum(22), ".zshrc": sum(3)}' >r.json
}

@test "pair: what the tools read validates; a pair without remote or with a V1 side does not" {
	diverged_pair
	pair l.json r.json base.json >p.json
	reject pair p.json 'del(.remote)' \
		'.local = {active_profile: "personal", dotfiles_path: "/d", repo_url: "u"}' '.base = 42' '.extra = {}'
	pair l.json r.json >p2.json
	validate pair p2.json
	run heimdal-lineage compare <p.json
	expect_status 1
	valid relation
}

@test "relation: heimdal-lineage compare for each relation validates" {
	st 42 41 '.history = [h(41; "m1"), h(42; "m1")]' >a.json
	st 43 42 '.history = [h(41; "m1"), h(42; "m1"), h(43; "m2")]' >b.json
	st 42 41 '.history = [h(41; "m1"), h(42; "m3")]' >c.json
	st 42 41 '.lineage.id = "lineage-other"' >d.json
	for want in "a.json a.json equal" "b.json a.json ahead" "a.json b.json behind" \
		"a.json c.json diverged" "a.json d.json unrelated"; do
		set -- $want
		run --separate-stderr heimdal-lineage compare --local "$1" --remote "$2"
		jq -e --arg r "$3" '.relation == $r' <<<"$output" >/dev/null || fail "$want: $output"
		valid relation
	done
	heimdal-lineage compare --local a.json --remote d.json >rel.json || true
	reject relation rel.json '.relation = "sideways"' 'del(.common_parent)' \
		'.common_parent = 41' '.local_serial = "42"' '.remote_serial = -1' '.conflicts = []'
}

@test "conflicts: every conflict type heimdal-conflicts reports validates" {
	diverged_pair
	st 42 41 '.history = [h(41; "m1"), h(42; "B")] | .active_profile = "work" | .dotfiles_path = "/srv/dots"' >pr.json
	st 42 41 '.lineage.id = "lineage-zzz"' >u.json
	st 43 42 '.version = 3 | .new_field = {}' >v3.json
	seen=
	for args in "l.json r.json" "l.json r.json base.json" "l.json pr.json" "l.json u.json" "l.json v3.json"; do
		set -- $args
		run --separate-stderr heimdal-conflicts --local "$1" --remote "$2" ${3:+--base "$3"}
		expect_status 1
		valid conflicts
		seen="$seen $(jq -r '[.conflicts[].type] | join(" ")' <<<"$output")"
	done
	for t in lineage_mismatch version_mismatch serial_divergence profile_mismatch path_mismatch file_drift; do
		[[ "$seen" == *"$t"* ]] || fail "no $t in:$seen"
	done
	heimdal-conflicts --local l.json --remote r.json --base base.json >c.json || true
	jq -e '.conflicts[] | select(.type == "file_drift") | has("base")' c.json >/dev/null || fail "no base"
	reject conflicts c.json '.conflicts[0].severity = "low"' '.conflicts[0].type = "bogus"' \
		'del(.conflicts[0].common_parent)' '.conflicts[1].local = "XYZ"' \
		'.conflicts[1].winner = "local"' 'del(.conflicts)' '.conflicts[0].description = 42'
}

@test "conflicts --diff: the differences validate" {
	diverged_pair
	run --separate-stderr heimdal-conflicts --diff --local l.json --remote r.json
	expect_status 1
	valid conflicts
	jq -e '[.differences[] | select(has("only_local"))] | length > 0' <<<"$output" >/dev/null || fail "no array diff"
	printf '%s\n' "$output" >d.json
	reject conflicts d.json '.differences[0] = {field: ".x"}' '.differences[0].field = "lineage"' \
		'.conflicts = []' '.differences[0].extra = 1'
}

@test "merge report: heimdal-merge --report for each strategy validates, and so does the merged state" {
	diverged_pair
	for s in merge use-local use-remote manual; do
		run --separate-stderr heimdal-merge --strategy "$s" --local l.json --remote r.json \
			--base base.json --report "rep-$s.json"
		if [ "$s" = manual ]; then
			expect_status 1
			[ -z "$output" ] || fail "manual printed a state"
		else
			expect_status 0
			valid state-v2
		fi
		validate merge-report "rep-$s.json" || fail "report of $s: $(cat "rep-$s.json")"
		jq -e --arg s "$s" '.strategy == $s and (.conflicts | length) > 0' "rep-$s.json" >/dev/null ||
			fail "$s: $(cat "rep-$s.json")"
	done
	jq -e '[.conflicts[] | select(.type == "file_drift")] == []' rep-merge.json >/dev/null ||
		fail "a state merge settled a file"
	reject merge-report rep-merge.json '.strategy = "theirs"' 'del(.serial)' \
		'.conflicts += [{type: "file_drift", severity: "low", description: "x", path: "a"}]' \
		'.machines_combined = "3"' '.conflicts_resolved = -1'
	reject merge-report rep-manual.json '.serial = 43' '.conflicts_resolved = 1'
}

@test "drift report: modified, missing, clean and errors from heimdal-drift validate" {
	mkdir "$HOME/.config" outside
	printf changed >"$HOME/.bashrc"
	printf clean >"$HOME/.zshrc"
	printf secret >outside/secret
	ln -s "$BATS_TEST_TMPDIR/outside/secret" "$HOME/.escape"
	sums=$(jq -n --arg c "$(printf clean | sha256sum | cut -c1-64)" \
		'{".bashrc": $c, ".zshrc": $c, ".vimrc": "5d41402abc4b2a76b9719d911017c592",
		  ".config": $c, ".escape": $c}')
	v2_state | jq --argjson c "$sums" '.checksums = $c' >s.json
	run --separate-stderr heimdal-drift --all --root "$HOME" s.json
	expect_status 1
	expect_json '(.modified | length) == 1 and .missing == [".vimrc"] and .clean == [".zshrc"]
		and ([.errors[].path] == [".config", ".escape"])'
	valid drift-report
	printf '%s\n' "$output" >r.json
	reject drift-report r.json 'del(.checked)' '.checked = "5"' '.missing = [".vimrc", ".vimrc"]' \
		'.modified[0].actual = "5d41402abc4b2a76b9719d911017c592"' '.missing[0] = "../x"' \
		'.errors[0] = {path: ".config"}' '.extra = []'
	run --separate-stderr heimdal-drift --root "$HOME" s.json
	valid drift-report
	expect_json 'has("clean") | not'
}

@test "lock: heimdal-lock acquire, state.lock and heimdal-lock info validate; locked false too" {
	v2_state >"$HEIMDAL_HOME/state.json"
	chmod 600 "$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal-lock info
	expect_status 0
	valid lock-info
	expect_json '. == {locked: false}'
	run --separate-stderr heimdal-lock acquire --op apply --reason "Applying configuration" --pid "$HOLDER" \
		--state "$HEIMDAL_HOME/state.json"
	expect_status 0
	valid lock
	expect_json '.state_serial | type == "number"'
	validate lock "$HEIMDAL_HOME/state.lock"
	reject lock "$HEIMDAL_HOME/state.lock" '.id = "lock-1"' '.lock_type = "Hybrid"' 'del(.machine.pid)' \
		'.machine.pid = "12"' '.created_at = "now"' '.remote = {url: "x"}' '.locked = true' 'del(.reason)'
	run --separate-stderr heimdal-lock info
	expect_status 0
	valid lock-info
	expect_json '.locked and (.stale | not) and .stale_reason == null and .holder_alive'
	printf '%s\n' "$output" >info.json
	kill "$HOLDER"
	wait "$HOLDER" 2>/dev/null || true
	run --separate-stderr heimdal-lock info
	valid lock-info
	expect_json '.stale and (.stale_reason | type == "string") and .holder_alive == false'
	reject lock-info info.json 'del(.mine)' '.locked = false' '.stale_reason = "old"' '.age_seconds = -1' \
		'.holder_alive = "yes"' '.extra = 1' 'del(.id)'
}

@test "lock over a remote, and heimdal-rlock: the record, the remote's lock.json and rlock's output validate" {
	setup_machines "$BATS_TEST_TMPDIR/remotes/origin.git"
	run --separate-stderr as a heimdal-lock acquire --state "$(mstate a)" --op apply --pid "$HOLDER"
	expect_status 0
	valid lock
	expect_json '.lock_type == "hybrid" and .remote.ref == "refs/heimdal/lock"'
	git -C "$REMOTE" cat-file -p refs/heimdal/lock:lock.json >remote.json
	jq -e 'has("remote") | not' remote.json >/dev/null || fail "the remote's copy has a remote"
	validate lock remote.json
	as a heimdal-lock unlock --state "$(mstate a)" --force >/dev/null
	lock_config a '{"lock_type": "Local"}'
	record=$(as a heimdal-lock acquire --state "$(mstate a)" -c --op apply --pid "$HOLDER")
	run --separate-stderr as a heimdal-rlock acquire --repository "$(mdotfiles a)" --state "$(mstate a)" <<<"$record"
	expect_status 0
	valid rlock
	printf '%s\n' "$output" >taken.json
	run --separate-stderr as a bash -c 'jq .remote taken.json | heimdal-rlock release'
	expect_status 0
	valid rlock
	expect_json '.released'
	reject rlock taken.json '.remote.commit = "abc"' '.remote.ref = "refs/heads/main"' '.released = true' '{}'
}

@test "deployment record, machine file and heimdal status --json validate; a mutated record does not" {
	load helper-git
	REMOTE=$(bare_remote)
	seed="$BATS_TEST_TMPDIR/seed"
	git init -q "$seed"
	printf 'one\n' >"$seed/.bashrc"
	printf 'set nu\n' >"$seed/.vimrc"
	chmod +x "$seed/.vimrc"
	git -C "$seed" add -A && git -C "$seed" commit -qm seed && git -C "$seed" push -q "$REMOTE" HEAD:main
	for m in a b; do
		git_machine "$m"
		as "$m" heimdal init --profile personal --repo "$REMOTE" >/dev/null
		as "$m" heimdal sync >/dev/null
	done
	as a heimdal sync >/dev/null
	d="$(mhome a)/.heimdal/deployed.json"
	validate deployed "$d"
	jq -e '.files[".vimrc"].mode == "100755" and .files[".bashrc"].mode == "100644"' "$d"
	id=$(cat "$(mhome b)/.heimdal/machine-id")
	git --git-dir="$REMOTE" show "main:.heimdal/machines/$id.json" >"$BATS_TEST_TMPDIR/m.json"
	validate machine "$BATS_TEST_TMPDIR/m.json"
	printf 'two\n' >>"$(mhome a)/.bashrc"
	as a heimdal status --json >"$BATS_TEST_TMPDIR/st.json"
	validate status "$BATS_TEST_TMPDIR/st.json"
	jq -e '.files.changed_here == [".bashrc"] and (.machines | length) == 1' "$BATS_TEST_TMPDIR/st.json"
	for filter in '.version = 2' '.files[".bashrc"].blob = "xyz"' '.files[".bashrc"].mode = "100600"' \
		'.commit = 7' '.files[".bashrc"].extra = 1'; do
		jq "$filter" "$d" >"$BATS_TEST_TMPDIR/bad.json"
		run validate deployed "$BATS_TEST_TMPDIR/bad.json"
		[ "$status" -eq 1 ] || fail "schema accepted: $filter"
	done
}

@test "heimdal doctor --json validates, healthy or failing; a mutated report does not" {
	REMOTE=$(bare_remote)
	seed="$BATS_TEST_TMPDIR/seed"
	git init -q "$seed"
	printf 'one\n' >"$seed/.bashrc"
	git -C "$seed" add -A && git -C "$seed" commit -qm seed && git -C "$seed" push -q "$REMOTE" HEAD:main
	heimdal init --profile personal --repo "$REMOTE" >/dev/null
	heimdal sync >/dev/null
	run --separate-stderr heimdal doctor --json
	expect_status 0
	valid doctor
	printf '{"lock_type": "Sometimes"}\n' >"$HEIMDAL_HOME/lock_config.json"
	rm "$HEIMDAL_HOME/state.json"
	run --separate-stderr heimdal doctor --json
	expect_status 1
	valid doctor
	expect_json '.ok == false and ([.checks[] | select(.status == "fail")] | length) >= 2'
	doc=$output
	for filter in '.ok = "yes"' '.checks[0].status = "error"' '.checks[0].name = "other"' \
		'del(.checks[0].detail)' '.checks = []' '.extra = 1'; do
		jq "$filter" <<<"$doc" >"$BATS_TEST_TMPDIR/bad.json"
		run validate doctor "$BATS_TEST_TMPDIR/bad.json"
		[ "$status" -eq 1 ] || fail "schema accepted: $filter"
	done
}
