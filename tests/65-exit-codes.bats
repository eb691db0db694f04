#!/usr/bin/env bats
# Exit statuses pass through every process boundary: a plumbing tool that
# fails with 2, 3 or 4 inside a porcelain command makes the command exit with
# that status, its message on stderr, and nothing is offered to "resolve by
# hand".  Only a real "found" is 1.  The failing tool is put first on the exec
# path ($HEIMDAL_EXEC_PATH), as a user's own heimdal-X would be.

load helper
load helper-git

setup() {
	setup_scratch
	REMOTE=$(bare_remote)
}

# fake TOOL CODE: a heimdal-TOOL first on the exec path that fails with CODE.
fake() {
	FAKE="$BATS_TEST_TMPDIR/fake"
	rm -rf "$FAKE"
	mkdir -p "$FAKE"
	printf '#!/bin/sh\necho "heimdal-%s: error: the disk is on fire (%s)" >&2\nexit %s\n' \
		"$1" "$2" "$2" >"$FAKE/heimdal-$1"
	chmod +x "$FAKE/heimdal-$1"
}

# Machines a and b, joined, each with a write of its own: b's sync diverges.
# b's home is kept in $B0 so that every row starts from the same place.
diverged() {
	joined a b
	as a heimdal sync --no-apply >/dev/null
	record a apply
	record b apply
	as a heimdal sync --no-apply >/dev/null
	as b git -C "$(mhome b)/.dotfiles" fetch -q origin
	as b git -C "$(mhome b)/.dotfiles" show origin/main:.heimdal/state.json \
		>"$BATS_TEST_TMPDIR/remote.json"
	B0="$BATS_TEST_TMPDIR/b0"
	cp -a "$(mhome b)" "$B0"
}

restore_b() {
	rm -rf "$(mhome b)"
	cp -a "$B0" "$(mhome b)"
}

# row TOOL CODE COMMAND...: b runs COMMAND with heimdal-TOOL failing with CODE.
row() {
	local tool=$1 code=$2 before
	shift 2
	restore_b
	fake "$tool" "$code"
	before=$(snapshot "$(mhome b)/.heimdal")
	HEIMDAL_EXEC_PATH="$FAKE" run --separate-stderr as b heimdal "$@"
	[ "$status" -eq "$code" ] ||
		fail "heimdal $* with heimdal-$tool exiting $code: exit $status
stdout: $output
stderr: $stderr"
	[[ "$stderr" == *"heimdal-$tool: error: the disk is on fire ($code)"* ]] ||
		fail "heimdal $*: the tool's message is lost: $stderr"
	[[ "$output" != *"--use-local"* && "$output" != *"--use-remote"* ]] ||
		fail "heimdal $*: a failed tool is not a conflict to resolve by hand: $output"
	[ "$(snapshot "$(mhome b)/.heimdal")" = "$before" ] || fail "heimdal $*: \$HEIMDAL_HOME changed"
	[ ! -e "$(mhome b)/.heimdal/state.lock" ] || fail "heimdal $*: state.lock left"
	! git --git-dir="$REMOTE" rev-parse -q --verify refs/heimdal/lock >/dev/null ||
		fail "heimdal $*: refs/heimdal/lock left on the remote"
}

@test "a plumbing tool's exit 2, 3 or 4 is the porcelain's, with the tool's message" {
	diverged
	while read -r tool code cmd; do
		# shellcheck disable=SC2086
		row "$tool" "$code" $cmd
	done <<'TABLE'
merge 2 sync --no-apply
merge 3 sync --no-apply
merge 4 sync --no-apply
merge 3 sync
merge 3 pull
conflicts 2 sync --no-apply
conflicts 3 sync --no-apply
conflicts 4 sync --no-apply
conflicts 3 push
merge 2 state resolve --merge
merge 4 state resolve --use-remote
lineage 3 state resolve --merge
conflicts 3 state check-conflicts
drift 3 state check-drift
TABLE
}

@test "apply and commit pass on heimdal-lineage's exit 2, 3 or 4, with its message, and leave no lock" {
	joined a b
	commit_file a .bashrc 'export A=1'
	B0="$BATS_TEST_TMPDIR/b0"
	cp -a "$(mhome b)" "$B0"
	for code in 2 3 4; do
		row lineage "$code" apply
	done
	commit_file b .zshrc 'export B=0'
	as b heimdal apply >/dev/null
	printf 'export B=2\n' >"$(mhome b)/.zshrc"
	rm -rf "$B0"
	cp -a "$(mhome b)" "$B0"
	row lineage 3 commit -m edit
}

@test "only heimdal-merge's real \"found\" (exit 1) asks for the state to be resolved by hand" {
	diverged
	restore_b
	fake merge 1
	HEIMDAL_EXEC_PATH="$FAKE" run --separate-stderr as b heimdal sync --no-apply
	expect_status 1
	[[ "$output" == *"X Automatic merge failed"* ]] || fail "$output"
	[[ "$output" == *"heimdal state resolve --use-remote"* ]] || fail "$output"
	[ ! -e "$(mhome b)/.heimdal/state.lock" ] || fail "state.lock left"
}
