#!/usr/bin/env bats
# Signals: SIGINT to the whole process group (what the terminal's Ctrl-C
# sends) and SIGTERM to the command alone (what kill(1) sends), at many
# moments of apply, commit, resolve, sync and push, with the hybrid lock on a
# real remote.  Whatever the moment, the command gives back what it holds
# before it dies: no state.lock, no refs/heimdal/lock on the remote, no
# temporary; the state is whole; and the next run needs no recovery.

load helper
load helper-git
load worlds

# SIG_N: moments per command and signal: 15, or 5 under the sanitizers,
# which make every run ten times slower.
if [ -n "${SANITIZE:-}" ]; then
	SIG_N=${SIG_N:-5}
else
	SIG_N=${SIG_N:-15}
fi

# The id in the remote's refs/heimdal/lock, or "none".
remote_lock() {
	local id
	id=$(git --git-dir="$REMOTE" cat-file -p refs/heimdal/lock:lock.json 2>/dev/null | jq -r .id 2>/dev/null)
	printf '%s\n' "${id:-none}"
}

# start MACHINE CMD...: CMD as MACHINE, in its own process group; sets PID.
# A shell starts background commands with SIGINT and SIGQUIT ignored; the
# command gets them back as a terminal's foreground job has them.
start() {
	local name=$1 home
	home=$(mhome "$1")
	shift
	HOME="$home" HEIMDAL_HOME="$home/.heimdal" HEIMDAL_HOSTNAME="$name" \
		setsid env --default-signal=INT,QUIT "$@" >"$BATS_TEST_TMPDIR/cmd.out" 2>&1 &
	PID=$!
}

# send SIG: SIGINT to the process group, SIGTERM to the command alone.
send() {
	if [ "$1" = INT ]; then
		kill -INT -- "-$PID" 2>/dev/null || true
	else
		kill -TERM "$PID" 2>/dev/null || true
	fi
}

# hit SIG: send SIG, then wait for the command (and every process of its
# group) to end.  Sets ENDED.
hit() {
	send "$1"
	ended
}

ended() {
	ENDED=0
	wait "$PID" || ENDED=$?
	while ps -o stat= -g "$PID" | grep -q '^[^Z]'; do
		sleep 0.005
	done
}

# released MACHINE SIG WHEN: what a command killed by SIG must have given back.
released() {
	local m=$1 sig=$2 when=$3 home code
	home=$(mhome "$m")
	code=$((128 + $(kill -l "$sig")))
	# It finished first (0), or it died of the signal: never another end.
	[ "$ENDED" = 0 ] || [ "$ENDED" = "$code" ] ||
		fail "SIG$sig $when: exit $ENDED: $(cat "$BATS_TEST_TMPDIR/cmd.out")"
	[ ! -e "$home/.heimdal/state.lock" ] ||
		fail "SIG$sig $when: state.lock left: $(cat "$home/.heimdal/state.lock")"
	[ "$(remote_lock)" = none ] || fail "SIG$sig $when: refs/heimdal/lock left on the remote"
	[ -z "$(temporaries "$home")" ] || fail "SIG$sig $when: temporaries left: $(temporaries "$home")"
	# git's own lock files too (index.lock, a ref's .lock), in the clone and
	# in the remote.
	[ -z "$(find "$home/.dotfiles/.git" "$REMOTE" -name '*.lock')" ] ||
		fail "SIG$sig $when: git lock files left: $(find "$home/.dotfiles/.git" "$REMOTE" -name '*.lock')"
	heimdal-migrate "$home/.heimdal/state.json" >/dev/null || fail "SIG$sig $when: invalid state"
}

# signal_loop MACHINE CMD...: the command run once to learn its run time,
# then SIG_N times for each signal: the saved world back, the command
# started, the signal sent at a moment spread over the run, what it held
# checked, and the next run done by itself.
signal_loop() {
	local m=$1 sig iter us t0 t1 run_us died=0 finished=0
	shift
	world_save
	t0=$(date +%s%N)
	as "$m" "$@" >/dev/null 2>&1 || fail "the command itself fails: $*"
	t1=$(date +%s%N)
	run_us=$(((t1 - t0) / 1000))
	for sig in INT TERM; do
		for iter in $(seq 1 "$SIG_N"); do
			world_restore
			us=$(((RANDOM * 32768 + RANDOM) % (run_us + 1)))
			start "$m" "$@"
			sleep "$((us / 1000000)).$(printf '%06d' $((us % 1000000)))"
			hit "$sig"
			released "$m" "$sig" "after ${us}us (iteration $iter)"
			if [ "$ENDED" = 0 ]; then finished=$((finished + 1)); else died=$((died + 1)); fi
			run --separate-stderr as "$m" "$@"
			[ "$status" -eq 0 ] ||
				fail "SIG$sig after ${us}us: the next run fails ($status): $stderr"
			[ ! -e "$(mhome "$m")/.heimdal/state.lock" ] || fail "the next run left the lock"
		done
	done
	echo "# $*: ${run_us}us a run; died of the signal $died, finished first $finished" >&3
}

@test "SIGINT and SIGTERM during apply: no lock, local or remote, no temporary left" {
	world_apply
	signal_loop a heimdal apply
}

@test "SIGINT and SIGTERM during commit: no lock, local or remote, no temporary left" {
	world_commit
	signal_loop a heimdal commit -m "Accept .vimrc"
}

@test "SIGINT and SIGTERM during state resolve --merge: no lock, local or remote, no temporary left" {
	world_resolve
	signal_loop b heimdal state resolve --merge
}

@test "SIGINT and SIGTERM during sync: no lock, local or remote, no temporary left" {
	world_sync
	record b apply
	signal_loop b heimdal sync
}

@test "SIGINT and SIGTERM during push: no lock, local or remote, no temporary left" {
	world_sync
	commit_file a .bashrc 'export FROM=a, again'
	record a apply
	signal_loop a heimdal push
}

# held: 0 when both halves of apply's lock are held: state.lock records the
# remote ref, and the remote holds it.  Sets ID.
held() {
	ID=$(jq -r 'select(.remote != null) | .id' "$(mhome a)/.heimdal/state.lock" 2>/dev/null)
	[ -n "$ID" ] && [ "$(remote_lock)" = "$ID" ]
}

# A tree large enough that apply's write phase lasts; apply is stopped
# (SIGSTOP) in its write phase (its first temporaries beside the targets),
# both halves of its lock held, and the signal comes while it is stopped
# there.  A moment caught only as apply was giving the lock back (its
# release half done) is let go and tried again.
@test "SIGINT and SIGTERM while apply holds refs/heimdal/lock: both halves of the lock given back" {
	REMOTE=$(bare_remote)
	joined a
	dot="$(mhome a)/.dotfiles"
	for d in $(seq 1 10); do
		mkdir -p "$dot/.big/$d"
		for f in $(seq 1 100); do printf '%s %s\n' "$d" "$f" >"$dot/.big/$d/$f"; done
	done
	ingit a add .big
	ingit a commit -qm big
	world_save
	for sig in INT TERM INT TERM; do
		caught=
		for _ in 1 2 3 4 5; do
			world_restore
			start a heimdal apply
			for _ in $(seq 2000); do
				[ -z "$(find "$(mhome a)/.big" -name '.*.heimdal-*-*.??????' 2>/dev/null | head -1)" ] || break
				sleep 0.002
			done
			kill -STOP "$PID"
			if held; then
				caught=1
				break
			fi
			kill -CONT "$PID"
			wait "$PID" || true
		done
		[ -n "$caught" ] || fail "apply was never stopped holding both halves of the lock"
		send "$sig"
		kill -CONT "$PID"
		ended
		[ "$ENDED" = $((128 + $(kill -l "$sig"))) ] || fail "SIG$sig: apply ended with $ENDED"
		released a "$sig" "while the lock $ID was held"
	done
}
