# helper.bash - shared setup for heimdal's bats suites.
#
# Every test gets a scratch HOME and HEIMDAL_HOME under BATS_TEST_TMPDIR, the C
# locale (ASCII markers) unless a test sets LC_ALL itself, and a pinned clock.

bats_require_minimum_version 1.5.0

FIXTURES="$BATS_TEST_DIRNAME/fixtures"

setup_scratch() {
	umask 077
	export HOME="$BATS_TEST_TMPDIR/home"
	export HEIMDAL_HOME="$HOME/.heimdal"
	export LC_ALL=C
	export NO_COLOR=1
	export HEIMDAL_NOW="2024-01-15T10:30:00Z"
	export HEIMDAL_HOSTNAME="test-host"
	export USER="${USER:-tester}"
	unset HEIMDAL_VERBOSE
	# Under make check VALGRIND=1 the exec path points at the memcheck wrappers.
	[ -n "${HEIMDAL_TEST_VALGRIND:-}" ] || unset HEIMDAL_EXEC_PATH
	mkdir -p "$HOME"
	mkdir -m 700 -p "$HEIMDAL_HOME"
	git config --global user.name "Heimdal Test" 2>/dev/null || true
	git config --global user.email "test@example.invalid" 2>/dev/null || true
	git config --global init.defaultBranch main 2>/dev/null || true
	git config --global protocol.file.allow always 2>/dev/null || true
}

setup() {
	setup_scratch
}

# A second machine: its own HOME/HEIMDAL_HOME pair.  Usage: machine NAME; then
# run commands with `as NAME cmd...`.
machine() {
	local dir="$BATS_TEST_TMPDIR/machines/$1"
	mkdir -p "$dir/home/.heimdal"
	chmod 700 "$dir/home/.heimdal"
}
# mstate M: machine M's state file (what a command of M names with --state).
mstate() {
	printf '%s\n' "$BATS_TEST_TMPDIR/machines/$1/home/.heimdal/state.json"
}

as() {
	local name=$1
	shift
	HOME="$BATS_TEST_TMPDIR/machines/$name/home" \
		HEIMDAL_HOME="$BATS_TEST_TMPDIR/machines/$name/home/.heimdal" \
		HEIMDAL_HOSTNAME="$name" "$@"
}

# Write the V1 fixture (or a named fixture) as the local state.
install_state() {
	cp "$FIXTURES/${1:-v1.json}" "$HEIMDAL_HOME/state.json"
	chmod 600 "$HEIMDAL_HOME/state.json"
}

# A V2 state on stdout, migrated from the V1 fixture with fixed ids.
v2_state() {
	heimdal-migrate --machine-id "${1:-machine-1}" --lineage-id "${2:-lineage-abc123}" \
		"$FIXTURES/v1.json"
}

# dotfiles_repo [PATH...]: $DOT committed as a git repository (PATHs, or
# all of it) and a V2 state naming it as the dotfiles, profile "personal".
dotfiles_repo() {
	git -C "$DOT" init -q
	if [ $# -gt 0 ]; then git -C "$DOT" add "$@"; else git -C "$DOT" add -A; fi
	git -C "$DOT" commit -qm init
	v2_state | jq --arg d "$DOT" '.dotfiles_path = $d | .active_profile = "personal"' \
		>"$HEIMDAL_HOME/state.json"
	chmod 600 "$HEIMDAL_HOME/state.json"
}

# Checksums of every file under a directory, to prove nothing changed.  Two
# files are identity and infrastructure, not content, and are left out: the
# lock's guard file (empty, created once so flock(2) always has one inode) and
# machine-id (generated once, the first time the lock records who holds it).
snapshot() {
	(cd "$1" && find . -type f ! -name state.lock.guard ! -name machine-id -print0 |
		sort -z | xargs -0r sha256sum)
}

# A bare repository to act as a remote.  Prints its path.
bare_remote() {
	local dir="$BATS_TEST_TMPDIR/remotes/${1:-origin}.git"
	mkdir -p "$dir"
	git init -q --bare "$dir"
	printf '%s\n' "$dir"
}

# A free TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Fail with a message showing what ran.
fail() {
	printf '%s\n' "$@" >&2
	printf 'status: %s\noutput: %s\n' "${status:-}" "${output:-}" >&2
	[ -z "${stderr:-}" ] || printf 'stderr: %s\n' "$stderr" >&2
	return 1
}

# expect_status N: the last `run` exited with N.
expect_status() {
	[ "$status" -eq "$1" ] || fail "expected status $1, got $status"
}

# expect_json FILTER: the last `run` printed JSON for which jq -e FILTER holds.
expect_json() {
	printf '%s' "$output" | jq -e "$1" >/dev/null || fail "jq -e '$1' failed"
}
