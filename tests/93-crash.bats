#!/usr/bin/env bats
# Crash suite: kill -9 at random moments; afterwards every file is old or new,
# never partial, and the next command works by itself.

load helper

# kill_at_random US CMD...: start CMD in the background, kill -9 it after a
# random time up to US microseconds (0-9.9 ms without US), reap it.
kill_at_random() {
	local us=$1
	shift
	"$@" >/dev/null 2>&1 &
	local pid=$!
	if [ "$us" -gt 0 ]; then
		us=$(((RANDOM * 32768 + RANDOM) % us))
		sleep "$((us / 1000000)).$(printf '%06d' $((us % 1000000)))"
	else
		sleep "0.00$((RANDOM % 10))$((RANDOM % 10))"
	fi
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

@test "kill -9 during state migrate, 200 times: the state is V1 or V2, never partial" {
	killed_v1=0 killed_v2=0
	# How long a migrate takes here: the kills spread over it and a
	# quarter beyond.
	install_state v1.json
	t0=$(date +%s%N)
	heimdal state migrate >/dev/null
	t1=$(date +%s%N)
	run_us=$(((t1 - t0) / 1000))
	for i in $(seq 1 200); do
		install_state v1.json
		kill_at_random $((run_us + run_us / 4 + 1)) heimdal state migrate
		# Whatever moment it died, the file is one of the two whole states.
		heimdal-migrate "$HEIMDAL_HOME/state.json" >/dev/null ||
			fail "iteration $i: state is neither V1 nor V2: $(head -c 200 "$HEIMDAL_HOME/state.json")"
		if jq -e 'has("version")' "$HEIMDAL_HOME/state.json" >/dev/null; then
			killed_v2=$((killed_v2 + 1))
		else
			killed_v1=$((killed_v1 + 1))
		fi
		# The next command recovers by itself.
		run --separate-stderr heimdal state version
		[ "$status" -eq 0 ] || fail "iteration $i: state version failed: $stderr"
	done
	# Temporaries left by a killed writer are never taken for the state.
	for t in "$HEIMDAL_HOME"/state.json.tmp.*; do
		[ -e "$t" ] || continue
		[ "$(jq -r .version "$HEIMDAL_HOME/state.json")" = 2 ]
	done
	echo "# heimdal state migrate: ${run_us}us a run; died before the rename: $killed_v1, after: $killed_v2" >&3
}

@test "kill -9 while two processes create the machine id: one id, never empty" {
	for i in $(seq 1 50); do
		rm -f "$HEIMDAL_HOME/machine-id"
		kill_at_random 0 heimdal-migrate "$FIXTURES/v1.json"
		heimdal-migrate "$FIXTURES/v1.json" >"$BATS_TEST_TMPDIR/a.json" &
		heimdal-migrate "$FIXTURES/v1.json" >"$BATS_TEST_TMPDIR/b.json"
		wait
		id=$(cat "$HEIMDAL_HOME/machine-id")
		[ -n "$id" ]
		[ "$(jq -r .machine.id "$BATS_TEST_TMPDIR/a.json")" = "$id" ]
		[ "$(jq -r .machine.id "$BATS_TEST_TMPDIR/b.json")" = "$id" ]
	done
}

# --- apply, commit, resolve and sync ------------------------------------------
#
# Each family sets up the real situation once (machines with a clone of a bare
# remote, made by heimdal init and sync), saves it, runs the command to
# completion to learn the new state and files and how long the command takes,
# then N times: restore the saved world, start the command, kill -9 its whole
# process group at a moment spread over that run time, check, and run the
# command again to completion.

# CRASH_N: iterations per family: 200, or 50 under the sanitizers, which
# make every run ten times slower (make check runs the 200 first).
if [ -n "${SANITIZE:-}" ]; then
	CRASH_N=${CRASH_N:-50}
else
	CRASH_N=${CRASH_N:-200}
fi

# kill_after US MACHINE CMD...: start CMD as MACHINE in its own process group,
# kill -9 the group after US microseconds, and wait until none of its
# processes is left (a plumbing child or a git push it started dies with it,
# as in a power cut).
kill_after() {
	local us=$1 name=$2 home
	home=$(mhome "$name")
	shift 2
	HOME="$home" HEIMDAL_HOME="$home/.heimdal" HEIMDAL_HOSTNAME="$name" \
		setsid "$@" >/dev/null 2>&1 &
	local pid=$!
	sleep "$((us / 1000000)).$(printf '%06d' $((us % 1000000)))"
	kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	# A killed process's children may stay zombies until init reaps them:
	# only the living count.
	while ps -o stat= -g "$pid" | grep -q '^[^Z]'; do
		sleep 0.005
	done
}

# clone_locks, remote_locks: the lock files git leaves in the clones, and in
# the remotes.
clone_locks() {
	find "$BATS_TEST_TMPDIR/machines" -name '*.lock' -path '*.git/*'
}
remote_locks() {
	find "$BATS_TEST_TMPDIR/remotes" -name '*.lock'
}

# crash_loop N MACHINE "FILES" CMD...: the loop described above, for CMD run as
# MACHINE.  FILES are paths under that machine's HOME (dotfiles in $HOME and
# in the clone) that must hold their old or their new bytes at every moment,
# and their new bytes once the next run is done.
crash_loop() {
	local n=$1 m=$2 files=$3
	shift 3
	local home s iter f us t0 t1 run_us serial old_serial new_serial
	local killed_old=0 killed_new=0 killed_mid=0 leftovers=0 clone_locks_left=0 remote_locks_left=0
	local undone=0
	local old="$BATS_TEST_TMPDIR/old" new="$BATS_TEST_TMPDIR/new"
	home=$(mhome "$m")
	s="$home/.heimdal/state.json"
	# A temporary that looks like a state, half written, as a killed writer
	# leaves it: no command may take it for the state, or touch it.
	# (An earlier one: what the process that dies in the loop leaves is
	# cleared by the next run.)
	head -c "$(($(wc -c <"$s") / 2))" "$s" >"$s.tmp.Decoy1"
	touch -d '-1 hour' "$s.tmp.Decoy1"
	cp "$s.tmp.Decoy1" "$BATS_TEST_TMPDIR/decoy"
	world_save
	rm -rf "$old" "$new"
	mkdir -p "$old" "$new"
	cp "$s" "$old/state.json"
	for f in $files; do
		mkdir -p "$old/$(dirname "$f")" "$new/$(dirname "$f")"
		if [ -e "$home/$f" ]; then cp "$home/$f" "$old/$f"; fi
	done
	# One run to completion: the new state and files, and the run time.
	t0=$(date +%s%N)
	as "$m" "$@" >/dev/null 2>&1 || fail "the command itself fails: $*"
	t1=$(date +%s%N)
	run_us=$(((t1 - t0) / 1000))
	cp "$s" "$new/state.json"
	for f in $files; do
		cp "$home/$f" "$new/$f"
		! cmp -s "$old/$f" "$new/$f" || fail "$f: the command does not change it"
	done
	! cmp -s "$old/state.json" "$new/state.json" || fail "the command does not write the state"
	old_serial=$(jq .lineage.serial "$old/state.json")
	new_serial=$(jq .lineage.serial "$new/state.json")

	for iter in $(seq 1 "$n"); do
		world_restore
		# Spread over the run, and a quarter beyond it (a slow run).
		us=$(((RANDOM * 32768 + RANDOM) % (run_us + run_us / 4 + 1)))
		kill_after "$us" "$m" "$@"
		# The state is whole and valid: the old one, the new one, or (for
		# a command that writes it more than once) one between the two.
		heimdal-migrate "$s" >/dev/null ||
			fail "iteration $iter (killed after ${us}us): invalid state: $(head -c 200 "$s")"
		if cmp -s "$s" "$old/state.json"; then
			killed_old=$((killed_old + 1))
		elif cmp -s "$s" "$new/state.json"; then
			killed_new=$((killed_new + 1))
		else
			serial=$(jq .lineage.serial "$s")
			[ "$serial" -ge "$old_serial" ] && [ "$serial" -le "$new_serial" ] ||
				fail "iteration $iter: serial $serial is outside $old_serial..$new_serial"
			killed_mid=$((killed_mid + 1))
		fi
		# Every file holds its old bytes (or is still absent) or its new.
		for f in $files; do
			if [ -e "$old/$f" ] && cmp -s "$home/$f" "$old/$f"; then continue; fi
			if [ ! -e "$old/$f" ] && [ ! -e "$home/$f" ]; then continue; fi
			cmp -s "$home/$f" "$new/$f" ||
				fail "iteration $iter (killed after ${us}us): $f is neither old nor new: $(head -c 100 "$home/$f")"
		done
		for f in "$home"/.heimdal/*.heimdal-*; do
			[ -e "$f" ] && [ "$f" != "$s.tmp.Decoy1" ] && leftovers=$((leftovers + 1))
		done
		# git's own lock files (index.lock, a ref's .lock) left by the
		# killed process: in the clone, the next command removes them (it
		# broke into the dead holder's state lock).  In a remote on a local
		# path they are another repository's, maybe another machine's: a
		# left ref lock there reads as an unreachable remote to the next
		# push.  Counted, and those removed as a user would.
		[ -z "$(clone_locks)" ] || clone_locks_left=$((clone_locks_left + 1))
		if [ -n "$(remote_locks)" ]; then
			remote_locks_left=$((remote_locks_left + 1))
			remote_locks | xargs rm -f
		fi
		# The next command recovers by itself: a state lock left by the
		# killed process (its pid is dead) is broken, temporaries ignored,
		# a checkout cut short undone and done again.
		run --separate-stderr as "$m" "$@"
		[ "$status" -eq 0 ] ||
			fail "iteration $iter (killed after ${us}us): the next run fails ($status): $stderr"
		[[ "$stderr" != *"was cut short"* ]] || undone=$((undone + 1))
		[ -z "$(clone_locks)" ] || fail "iteration $iter: git lock files left: $(clone_locks)"
		# and so are the temporaries the killed process left, in $HOME,
		# the clone and $HEIMDAL_HOME (the decoy, older, stays).
		[ -z "$(temporaries "$home")" ] || fail "iteration $iter: temporaries left: $(temporaries "$home")"
		heimdal-migrate "$s" >/dev/null || fail "iteration $iter: invalid state after the next run"
		for f in $files; do
			cmp -s "$home/$f" "$new/$f" ||
				fail "iteration $iter (killed after ${us}us): $f is not the new bytes after the next run"
		done
		# The clone is left as clean as a finished run leaves it.
		[ -z "$(git -C "$home/.dotfiles" status --porcelain)" ] ||
			fail "iteration $iter (killed after ${us}us): the clone is not clean: $(git -C "$home/.dotfiles" status --porcelain)"
		[ ! -e "$home/.heimdal/state.lock" ] || fail "iteration $iter: the next run left the lock behind"
		cmp -s "$s.tmp.Decoy1" "$BATS_TEST_TMPDIR/decoy" || fail "iteration $iter: the decoy temporary was touched"
	done
	echo "# $*: ${run_us}us a run; killed with the old state $killed_old, the new $killed_new," \
		"one between $killed_mid; temporaries left $leftovers; git lock files left in the clone" \
		"$clone_locks_left, in the remote $remote_locks_left; pulls cut short and undone $undone" >&3
}

@test "kill -9 during apply, $CRASH_N times: state and home files old or new; the next apply recovers" {
	load helper-git
	load worlds
	world_apply
	crash_loop "$CRASH_N" a ".bashrc .config/app/config .vimrc" heimdal apply
}

@test "kill -9 during commit, $CRASH_N times: state and clone old or new; the next commit recovers" {
	load helper-git
	load worlds
	world_commit
	crash_loop "$CRASH_N" a ".dotfiles/.vimrc" heimdal commit -m "Accept .vimrc"
	git -C "$(mhome a)/.dotfiles" fsck --no-dangling
}

@test "kill -9 during state resolve --merge, $CRASH_N times: the state old or new; backups whole" {
	load helper-git
	load worlds
	world_resolve
	crash_loop "$CRASH_N" b "" heimdal state resolve --merge
	for f in "$(mhome b)"/.heimdal/backups/*.json; do
		[ -e "$f" ] || continue
		heimdal-migrate "$f" >/dev/null || fail "$f: a partial backup"
	done
}

@test "kill -9 during sync, $CRASH_N times: state, home and remote whole; the next sync recovers" {
	load helper-git
	load worlds
	world_sync
	# libgit2's checkout writes the clone's files in place, so only $HOME
	# is whole at every moment; the clone is whole after the next sync.  A
	# sync killed after its pull, before its apply, leaves the next sync
	# to deploy what was pulled.
	crash_loop "$CRASH_N" b ".bashrc" heimdal sync
	git --git-dir="$REMOTE" fsck --no-dangling
}

# --- recovery touches only what it can prove the dead run made ----------------

# dead_holder NAME: a holder of NAME's state lock that is then killed -9.
# Sets VICTIM (its pid, dead once kill_victim ran) and TAG (its lock's tag).
dead_holder() {
	sleep 600 3>&- &
	VICTIM=$!
	local id
	id=$(as "$1" heimdal-lock acquire --state "$(mstate "$1")" -c --op apply --pid "$VICTIM" | jq -r .id)
	TAG=${id: -12}
	# Files made from now on are younger than the holder.
	sleep 1.1
}
kill_victim() {
	kill -9 "$VICTIM"
	wait "$VICTIM" 2>/dev/null || true
}

@test "recovery after a dead holder leaves a live git commit -a and the user's look-alike files alone" {
	load helper-git
	REMOTE=$(bare_remote)
	joined a
	commit_file a .vimrc 'set number'
	as a heimdal sync --no-apply >/dev/null
	home=$(mhome a)
	dot="$home/.dotfiles"
	dead_holder a
	# The user works meanwhile: notes that look like temporaries, and a
	# git commit -a waiting in its editor (git holds index.lock closed then).
	printf 'mine\n' >"$dot/notes.tmp.backup"
	printf 'mine\n' >"$home/.heimdal/notes.tmp.backup"
	printf 'set nu\n' >"$dot/.vimrc"
	printf '#!/bin/sh\ntouch "%s/editing"\nwhile [ ! -e "%s/go" ]; do sleep 0.05; done\necho "user commit" >"$1"\n' \
		"$BATS_TEST_TMPDIR" "$BATS_TEST_TMPDIR" >"$BATS_TEST_TMPDIR/editor"
	chmod +x "$BATS_TEST_TMPDIR/editor"
	(cd "$dot" && HOME="$home" GIT_EDITOR="$BATS_TEST_TMPDIR/editor" git commit -q -a) \
		>"$BATS_TEST_TMPDIR/git.out" 2>&1 3>&- &
	gitpid=$!
	for _ in $(seq 200); do [ -e "$BATS_TEST_TMPDIR/editing" ] && break; sleep 0.05; done
	[ -e "$dot/.git/index.lock" ] || fail "git holds no index.lock"
	kill_victim
	# The next command breaks the dead holder's lock and recovers.
	run --separate-stderr as a heimdal sync --no-apply
	[ -e "$dot/.git/index.lock" ] || fail "the live git commit lost its index.lock: $stderr"
	[[ "$stderr" == *".git/index.lock: left alone: git (process "*") is running in this repository"* ]] ||
		fail "stderr: $stderr"
	[ "$(cat "$dot/notes.tmp.backup")" = mine ] || fail "the user's notes in the clone were removed"
	[ "$(cat "$home/.heimdal/notes.tmp.backup")" = mine ] || fail "the user's notes in HEIMDAL_HOME were removed"
	touch "$BATS_TEST_TMPDIR/go"
	wait "$gitpid" || fail "the user's git commit failed: $(cat "$BATS_TEST_TMPDIR/git.out")"
	[ "$(git -C "$dot" log -1 --format=%s)" = "user commit" ] || fail "the user's commit is not there"
}

@test "recovery removes the dead run's own leftovers only: its lock's temporaries and the git lock files nobody holds" {
	load helper-git
	REMOTE=$(bare_remote)
	joined a
	as a heimdal sync --no-apply >/dev/null
	home=$(mhome a)
	dot="$home/.dotfiles"
	sleep 600 3>&- &
	live=$!
	dead_holder a
	# What the dead run left: temporaries named for its lock and its pid,
	# a ref lock file and an index.lock nobody has open.
	for f in "$dot/.vimrc.heimdal-$VICTIM-$TAG.Ab12Cd" "$home/.heimdal/state.json.heimdal-$VICTIM-$TAG.Zx9YwV" \
		"$dot/.git/refs/heads/main.lock" "$dot/.git/index.lock"; do
		printf 'partial' >"$f"
	done
	# Look-alikes that are not its: another lock's, a live maker's, and a
	# lock file a running process holds open.
	printf 'other' >"$dot/.bashrc.heimdal-$VICTIM-000000000000.Ab12Cd"
	printf 'live' >"$dot/.zshrc.heimdal-$live-$TAG.Ab12Cd"
	(exec 7>"$dot/.git/held.lock" && exec sleep 600) 3>&- &
	holder=$!
	for _ in $(seq 100); do [ -e "$dot/.git/held.lock" ] && break; sleep 0.05; done
	kill_victim
	run --separate-stderr as a heimdal sync --no-apply
	expect_status 0
	for f in "$dot/.vimrc.heimdal-$VICTIM-$TAG.Ab12Cd" "$home/.heimdal/state.json.heimdal-$VICTIM-$TAG.Zx9YwV" \
		"$dot/.git/refs/heads/main.lock" "$dot/.git/index.lock"; do
		[ ! -e "$f" ] || fail "left: $f ($stderr)"
	done
	[ "$(cat "$dot/.bashrc.heimdal-$VICTIM-000000000000.Ab12Cd")" = other ] || fail "another lock's temporary removed"
	[ "$(cat "$dot/.zshrc.heimdal-$live-$TAG.Ab12Cd")" = live ] || fail "a live maker's temporary removed"
	[ -e "$dot/.git/held.lock" ] || fail "a lock file held open was removed"
	[[ "$stderr" == *".git/held.lock: left alone: a running process has it open"* ]] || fail "stderr: $stderr"
	kill "$holder" "$live"
}
