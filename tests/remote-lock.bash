# remote-lock.bash - two "machines" sharing a dotfiles remote, for the
# hybrid lock suites.  Load after helper.

# setup_machines URL: machines a and b, each with a clone of the bare remote
# "origin" as its dotfiles repository, origin's URL set to URL (a path, a
# file:// URL or git://...), and a V2 state pointing at the clone.
setup_machines() {
	REMOTE=$(bare_remote origin)
	for m in a b; do
		machine "$m"
		local dot="$BATS_TEST_TMPDIR/machines/$m/dotfiles"
		git clone -q "$REMOTE" "$dot" 2>/dev/null
		git -C "$dot" remote set-url origin "$1"
		as "$m" heimdal-migrate --machine-id "machine-$m" --lineage-id lineage-test \
			"$FIXTURES/v1.json" | jq --arg p "$dot" '.dotfiles_path = $p' \
			>"$BATS_TEST_TMPDIR/machines/$m/home/.heimdal/state.json"
	done
}

# mdotfiles M: machine M's dotfiles repository.
mdotfiles() {
	printf '%s\n' "$BATS_TEST_TMPDIR/machines/$1/dotfiles"
}

# menv M: machine M's environment as NAME=VALUE words, for env(1).
menv() {
	local home="$BATS_TEST_TMPDIR/machines/$1/home"
	printf '%s\n' "HOME=$home" "HEIMDAL_HOME=$home/.heimdal" "HEIMDAL_HOSTNAME=$1"
}

# lock_config M JSON: machine M's lock_config.json.
lock_config() {
	printf '%s\n' "$2" >"$BATS_TEST_TMPDIR/machines/$1/home/.heimdal/lock_config.json"
}

lockfile() {
	printf '%s\n' "$BATS_TEST_TMPDIR/machines/$1/home/.heimdal/state.lock"
}

# The id in the remote's refs/heimdal/lock, or "none".
remote_lock_id() {
	if git -C "$REMOTE" rev-parse -q --verify refs/heimdal/lock >/dev/null; then
		git -C "$REMOTE" cat-file -p refs/heimdal/lock:lock.json | jq -r .id
	else
		echo none
	fi
}

# git daemon on 127.0.0.1, serving the remotes with push enabled.  Sets
# PORT and DAEMON; stop it with stop_daemon (teardown).
start_daemon() {
	PORT=$(free_port)
	mkdir -p "$BATS_TEST_TMPDIR/remotes"
	"$(git --exec-path)/git-daemon" --reuseaddr --export-all --enable=receive-pack \
		--base-path="$BATS_TEST_TMPDIR/remotes" --listen=127.0.0.1 --port="$PORT" \
		"$BATS_TEST_TMPDIR/remotes" 3>&- >/dev/null 2>&1 &
	DAEMON=$!
	for _ in $(seq 100); do
		(exec 5<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
		sleep 0.05
	done
	fail "git daemon did not start on port $PORT"
}

stop_daemon() {
	[ -z "${DAEMON:-}" ] || kill "$DAEMON" 2>/dev/null || true
}

# A listener on 127.0.0.1 that accepts connections and never answers.  Sets
# PORT and SILENT.
start_silent() {
	PORT=$(free_port)
	python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
print("ready", flush=True)
held = []
while True:
    held.append(s.accept()[0])
' "$PORT" 3>&- >"$BATS_TEST_TMPDIR/silent.out" 2>&1 &
	SILENT=$!
	for _ in $(seq 100); do
		grep -q ready "$BATS_TEST_TMPDIR/silent.out" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "silent listener did not start"
}

stop_silent() {
	[ -z "${SILENT:-}" ] || kill "$SILENT" 2>/dev/null || true
}

# race_rounds N: machines a and b try to take the lock at once, N times;
# exactly one must win each round, and the remote must hold the winner.
race_rounds() {
	local dir="$BATS_TEST_TMPDIR/race" round pa pb sa sb winner
	mkdir -p "$dir"
	for round in $(seq "$1"); do
		as a heimdal-lock acquire --state "$(mstate a)" -c --op race --pid "$HOLDER" >"$dir/a" 2>"$dir/a.err" 3>&- &
		pa=$!
		as b heimdal-lock acquire --state "$(mstate b)" -c --op race --pid "$HOLDER" >"$dir/b" 2>"$dir/b.err" 3>&- &
		pb=$!
		sa=0 sb=0
		wait "$pa" || sa=$?
		wait "$pb" || sb=$?
		if [ "$sa" = 0 ] && [ "$sb" = 4 ]; then
			winner=a
		elif [ "$sa" = 4 ] && [ "$sb" = 0 ]; then
			winner=b
		else
			fail "round $round: exit statuses a=$sa b=$sb" "$(cat "$dir/a.err" "$dir/b.err")"
		fi
		[ "$(remote_lock_id)" = "$(jq -r .id "$dir/$winner")" ] ||
			fail "round $round: the remote does not hold $winner's lock"
		jq -e '.remote.commit | length == 40' "$dir/$winner" >/dev/null ||
			fail "round $round: no remote part in $winner's record"
		as "$winner" heimdal-lock release <"$dir/$winner" || fail "round $round: release"
		[ "$(remote_lock_id)" = none ] || fail "round $round: remote lock left behind"
	done
}
