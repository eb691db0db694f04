#!/usr/bin/env bats
# make demo: the README's first command tells the whole story and succeeds.

load helper

@test "the demo runs to the end: migration, two machines offline, the merge, drift, history" {
	export TMPDIR="$BATS_TEST_TMPDIR"
	run --separate-stderr "$BATS_TEST_DIRNAME/../share/demo"
	expect_status 0
	for want in "== Migrate it to V2" "Warning: Cannot reach remote repository" \
		"Proceeding with local-only lock." "State Conflicts Detected" \
		"State diverged: local serial" "States merged successfully" \
		"State conflicts resolved automatically" "Already up to date." \
		"Modified Files (1):" "Recent State Operations" "export EDITOR=nvim" \
		"merged    .bashrc" 'alias ll="ls -la"' "set -o emacs" "Other machines:"; do
		[[ "$output" == *"$want"* ]] || fail "missing: $want"
	done
	# The last sync leaves both edits on the laptop, next to each other.
	[[ "$output" == *'alias ll="ls -la"
export EDITOR=nvim
export PAGER=less
set -o emacs'* ]] || fail "edits not merged"
	# Its temporary directory is gone.
	[ -z "$(find "$BATS_TEST_TMPDIR" -maxdepth 1 -name 'heimdal-demo.*')" ] || fail "left behind"
}
