#!/usr/bin/env bats
# The specification's multi-machine workflows, scenarios 1 to 4, end to end
# with two and three machines.

load helper
load helper-git

setup() {
	setup_scratch
	REMOTE=$(bare_remote)
}

# history_hosts NAME: the hostnames in that machine's `heimdal state history`.
history_hosts() {
	as "$1" heimdal state history --limit 50 --json | jq -r '[.[].hostname] | unique | join(",")'
}

@test "scenario 1: adding a second and a third machine" {
	git_machine a
	as a heimdal init --profile personal --repo "$REMOTE" >/dev/null
	commit_file a .bashrc 'alias gs="git status"'
	run --separate-stderr as a heimdal push
	expect_status 0
	for m in b c; do
		git_machine "$m"
		# The spec's steps: clone, init inside the clone, sync.
		as "$m" git clone -q "$REMOTE" "$(mhome "$m")/.dotfiles"
		cd "$(mhome "$m")/.dotfiles"
		run --separate-stderr as "$m" heimdal init --profile personal --repo "$REMOTE"
		expect_status 0
		[ "${lines[0]}" = "Using the existing clone at $(mhome "$m")/.dotfiles" ] || fail
		run --separate-stderr as "$m" heimdal sync --no-apply
		expect_status 0
		id=$(cat "$(mhome "$m")/.heimdal/machine-id")
		jq -e --arg id "$id" '.lineage.machines | index($id) != null' "$(mhome "$m")/.heimdal/state.json"
		remote_state "$REMOTE" | jq -e --arg id "$id" '.lineage.machines | index($id) != null'
	done
	[ "$(history_hosts c)" = "a,b,c" ] || fail "$(history_hosts c)"
	as a heimdal sync --no-apply >/dev/null
	[ "$(history_hosts a)" = "a,b,c" ]
	jq -e '.lineage.machines | length == 3' "$(mhome a)/.heimdal/state.json"
}

@test "scenario 1: with heimdal commit and apply on both sides" {
	git_machine a
	as a heimdal init --profile personal --repo "$REMOTE" >/dev/null
	commit_file a .vimrc 'set number'
	as a heimdal apply >/dev/null
	printf 'set number\nset ruler\n' >"$(mhome a)/.vimrc"
	run --separate-stderr as a heimdal commit -m "Current state"
	expect_status 0
	run --separate-stderr as a heimdal push
	expect_status 0
	git_machine b
	as b heimdal init --profile personal --repo "$REMOTE" >/dev/null
	run --separate-stderr as b heimdal sync
	expect_status 0
	[ "$(cat "$(mhome b)/.vimrc")" = "$(printf 'set number\nset ruler')" ]
	[[ "$(history_hosts b)" == *b* ]] || fail
}

@test "scenario 2: concurrent modifications, settled by sync on each machine" {
	joined a b
	as a heimdal sync --no-apply >/dev/null
	# Both machines change state while offline.
	record a apply
	commit_file a .bashrc from-a
	record b apply
	commit_file b .vimrc from-b
	as a heimdal sync --no-apply >/dev/null
	run --separate-stderr as b heimdal sync --no-apply
	expect_status 0
	[[ "$output" == *"State diverged: local serial"* ]] || fail
	[[ "$output" == *"OK State conflicts resolved automatically"* ]] || fail
	# The other machine: pull brings the merged result.
	run --separate-stderr as a heimdal pull
	expect_status 0
	[ "$(cat "$(mhome a)/.dotfiles/.vimrc")" = from-b ]
	as a heimdal sync --no-apply >/dev/null
	diff <(shared_view a) <(shared_view b)
}

@test "scenario 2, option A: state resolve --merge, then push" {
	joined a b
	as a heimdal sync --no-apply >/dev/null
	record a apply
	as a heimdal push >/dev/null
	record b apply
	ingit b fetch -q
	run --separate-stderr as b heimdal state check-conflicts
	expect_status 1
	run --separate-stderr as b heimdal state resolve --merge
	expect_status 0
	# The remote has a's commit, b has not fetched it into its branch: the
	# push takes it (b's state holds everything the remote's does) and goes on top.
	commit_file b .vimrc from-b
	run --separate-stderr as b heimdal push
	expect_status 0
	[[ "$output" == *"on top of the remote's commits"* ]] || fail
	remote_state "$REMOTE" | jq -e '[.history[] | select(.operation == "apply")] | length == 2'
	[ "$(git --git-dir="$REMOTE" show main:.vimrc)" = from-b ] || fail "b's commit not pushed"
	# Nothing of a's was dropped: a's last commit is in the remote's history.
	git --git-dir="$REMOTE" merge-base --is-ancestor "$(ingit a rev-parse HEAD)" main || fail "a's commit dropped"
}

@test "scenario 2, --manual: edit the state by hand, validate, commit, push" {
	joined a b
	as a heimdal sync --no-apply >/dev/null
	record a apply
	as a heimdal push >/dev/null
	record b apply
	ingit b fetch -q
	run --separate-stderr as b heimdal state resolve --manual
	expect_status 0
	[[ "$output" == *"4. Push: \`heimdal push\`"* ]] || fail
	# The hand edit: both histories, a serial above both sides.
	s="$(mhome b)/.heimdal/state.json"
	jq -s '.[0] as $l | .[1] as $r | $l
		| .history = ([$l.history[], $r.history[]] | unique | sort_by(.serial, .timestamp))
		| .lineage.parent_serial = ([$l.lineage.serial, $r.lineage.serial] | max)
		| .lineage.serial = .lineage.parent_serial + 1
		| .lineage.machines = ([$l.lineage.machines[], $r.lineage.machines[]] | unique)' \
		"$s" "$(mhome b)/.heimdal/state.remote.json" >"$BATS_TEST_TMPDIR/s"
	cp "$BATS_TEST_TMPDIR/s" "$s"
	run --separate-stderr as b heimdal state version
	expect_status 0
	run --separate-stderr as b heimdal commit -m "Fix state conflicts"
	expect_status 0
	run --separate-stderr as b heimdal push
	expect_status 0
	remote_state "$REMOTE" | jq -e --slurpfile s "$s" '.lineage.serial == $s[0].lineage.serial
		and ([.history[] | select(.operation == "apply")] | length == 2)'
	run --separate-stderr as a heimdal sync --no-apply
	expect_status 0
	run --separate-stderr as a heimdal state check-conflicts
	expect_status 0
}

@test "scenario 2, option B: state resolve --use-local, then push --force" {
	joined a b
	as a heimdal sync --no-apply >/dev/null
	record a apply
	as a heimdal push >/dev/null
	record b apply
	ingit b fetch -q
	run --separate-stderr as b heimdal state resolve --use-local
	expect_status 0
	run --separate-stderr as b heimdal push --force
	expect_status 0
	remote_state "$REMOTE" | jq -e --arg id "$(cat "$(mhome b)/.heimdal/machine-id")" \
		'.history[-1].machine_id == $id'
}

@test "scenario 2, option C: state resolve --use-remote, then apply" {
	joined a b
	as a heimdal sync --no-apply >/dev/null
	commit_file a .bashrc from-a
	record a apply
	as a heimdal push >/dev/null
	record b apply
	as b heimdal pull >/dev/null
	run --separate-stderr as b heimdal state resolve --use-remote
	expect_status 0
	run --separate-stderr as b heimdal apply
	expect_status 0
	[ "$(cat "$(mhome b)/.bashrc")" = from-a ]
}

@test "scenario 3: removing a machine; it stays in the lineage, the others go on" {
	joined a b c
	as a heimdal sync --no-apply >/dev/null
	as b heimdal sync --no-apply >/dev/null
	# c: final changes, pushed, then heimdal removed.
	commit_file c .tmux.conf 'set -g mouse on'
	record c apply
	as c heimdal sync --no-apply >/dev/null
	rm -rf "$(mhome c)/.heimdal"
	idc=$(remote_state "$REMOTE" | jq -r '.lineage.machines[2]')
	for m in a b; do
		run --separate-stderr as "$m" heimdal pull
		expect_status 0
		[ "$(cat "$(mhome "$m")/.dotfiles/.tmux.conf")" = 'set -g mouse on' ]
		as "$m" heimdal sync --no-apply >/dev/null
		jq -e --arg id "$idc" '.lineage.machines | index($id) != null' "$(mhome "$m")/.heimdal/state.json"
	done
	# a and b keep working together without c.
	record a apply
	as a heimdal sync --no-apply >/dev/null
	as b heimdal sync --no-apply >/dev/null
	diff <(shared_view a) <(shared_view b)
}

@test "scenario 4: working offline (closed port, then a silent server), then back online" {
	joined a b
	as a heimdal sync --no-apply >/dev/null
	port=$(free_port)
	ingit a remote set-url origin "git://127.0.0.1:$port/origin.git"
	record a apply
	LC_ALL=C.UTF-8 run --separate-stderr as a heimdal sync --no-apply
	expect_status 0
	[[ "${stderr_lines[0]}" == "⚠️  Warning: Cannot reach remote repository: "*"refused"* ]] || fail
	[ "${lines[-1]}" = "Remember to sync when connection is restored." ] || fail
	silent_start
	ingit a remote set-url origin "git://127.0.0.1:$SILENT_PORT/origin.git"
	printf '{"remote_timeout": 1}\n' >"$(mhome a)/.heimdal/lock_config.json"
	record a apply
	run --separate-stderr as a heimdal sync --no-apply
	expect_status 0
	[ "${stderr_lines[0]}" = "! Warning: Cannot reach remote repository: timed out after 1 seconds" ] || fail
	# b works meanwhile.
	record b apply
	as b heimdal sync --no-apply >/dev/null
	# Back online: one sync reconciles everything done meanwhile.
	ingit a remote set-url origin "$REMOTE"
	run --separate-stderr as a heimdal sync --no-apply
	expect_status 0
	as b heimdal sync --no-apply >/dev/null
	diff <(shared_view a) <(shared_view b)
	jq -e '[.history[] | select(.operation == "apply")] | length == 3' "$(mhome b)/.heimdal/state.json"
}

@test "scenario 4: apply offline falls back to the local lock with the spec's warning" {
	joined a
	# apply takes the state lock: a held lock makes it wait, then exit 4.
	as a heimdal-lock run --state "$(mstate a)" --op probe -- sleep 3 &
	probe=$!
	for _ in $(seq 50); do
		as a heimdal state lock-info 2>/dev/null | grep -q "Operation: probe" && break
		sleep 0.05
	done
	as a heimdal apply >/dev/null 2>&1 && applied=0 || applied=$?
	wait "$probe"
	[ "$applied" = 4 ] || fail "apply did not take the state lock (exit $applied)"
	port=$(free_port)
	ingit a remote set-url origin "git://127.0.0.1:$port/origin.git"
	LC_ALL=C.UTF-8 run as a heimdal apply
	expect_status 0
	[[ "$output" == *"⚠️  Warning: Cannot reach remote repository: "* ]] || fail
	[[ "$output" == *"Proceeding with local-only lock."* ]] || fail
	[[ "$output" == *"Remember to sync when connection is restored."* ]] || fail
	ingit a remote set-url origin "$REMOTE"
	run --separate-stderr as a heimdal sync --no-apply
	expect_status 0
}
