#!/usr/bin/env bats
# heimdal-drift and apply's plan judge a file in $HOME by one verdict
# (hm_drift): on the same tree, check-drift's report and apply --dry-run's
# plan agree on every file.

load helper

setup() {
	setup_scratch
	cd "$BATS_TEST_TMPDIR"
	DOT="$HOME/.dotfiles"
	mkdir -p "$DOT/.config/app" "$DOT/.config/old" "$DOT/.local/tool" "$DOT/bin"
	for f in .bashrc .vimrc .inputrc .zshrc .profile .config/app/config \
		.config/old/rc .local/tool/rc; do
		printf '%s v1\n' "$f" >"$DOT/$f"
	done
	printf '#!/bin/sh\necho hi\n' >"$DOT/bin/hello"
	chmod +x "$DOT/bin/hello"
	dotfiles_repo
	heimdal apply >/dev/null
}

# path<TAB>verdict for every file check-drift knows: clean, modified,
# missing, or "error: TEXT".
drift_table() {
	jq -r '(.clean[] | [., "clean"]), (.modified[] | [.path, "modified"]),
		(.missing[] | [., "missing"]), (.errors[] | [.path, "error: " + .error])
		| @tsv' <<<"$1" | sort
}

# path<TAB>action for every file apply --dry-run names: the word of its plan
# line, or "skip: REASON" from its warning.
apply_table() {
	{
		sed -n 's/^  \([a-z]*\) *\([^ ]*\).*/\2\t\1/p' <<<"$1"
		sed -n 's/^heimdal: warning: \([^:]*\): \([^;]*\);.*/\1\tskip: \2/p' <<<"$2"
	} | sort
}

@test "check-drift and apply --dry-run agree: modified, missing, a link out of HOME, a directory, a FIFO, a blocked directory" {
	outside="$BATS_TEST_TMPDIR/outside"
	mkdir -p "$outside"
	# Removed upstream: apply would remove it here if it were still here.
	git -C "$DOT" rm -q .config/old/rc
	git -C "$DOT" commit -qm 'remove old'
	printf 'my edit\n' >>"$HOME/.bashrc"
	rm "$HOME/.vimrc"
	cp "$HOME/.config/app/config" "$outside/config"
	ln -sf "$outside/config" "$HOME/.config/app/config"
	rm "$HOME/bin/hello" && mkdir "$HOME/bin/hello"
	rm "$HOME/.inputrc" && mkfifo "$HOME/.inputrc"
	rm -r "$HOME/.local/tool" && printf 'a file\n' >"$HOME/.local/tool"
	rm -r "$HOME/.config/old" && printf 'a file\n' >"$HOME/.config/old"
	# A link that stays inside HOME, same content: clean content to drift,
	# and still never written through by apply.
	mv "$HOME/.profile" "$HOME/.profile.real" && ln -s .profile.real "$HOME/.profile"

	run --separate-stderr timeout 20 heimdal state check-drift --json --all
	expect_status 1
	drift=$(drift_table "$output")
	before=$(snapshot "$HOME")
	run --separate-stderr timeout 20 heimdal apply --dry-run
	expect_status 1
	plan=$(apply_table "$output" "$stderr")
	[ "$(snapshot "$HOME")" = "$before" ] || fail "dry run wrote"

	expected_drift=".bashrc	modified
.config/app/config	error: resolves outside the root through a symlink
.config/old/rc	missing
.inputrc	error: not a regular file
.local/tool/rc	missing
.profile	clean
.vimrc	missing
.zshrc	clean
bin/hello	error: not a regular file"
	[ "$drift" = "$expected_drift" ] || fail "drift:" "$drift"
	# Each verdict has its action: modified is kept (changed here only),
	# missing is new (or, gone from the repository too, nothing to do; or
	# blocked by a file), an error is skipped, and a link is never written
	# through.
	expected_plan=".bashrc	kept
.config/app/config	skip: is a symlink
.inputrc	skip: is not a regular file
.local/tool/rc	skip: is missing, and a file stands where its directory would be
.profile	skip: is a symlink
.vimrc	new
bin/hello	skip: is not a regular file"
	[ "$plan" = "$expected_plan" ] || fail "plan:" "$plan"
	# The files that differ are the same for both, but for the two rules each
	# keeps: a link inside HOME is content to drift, and .config/old/rc is gone
	# from the repository and from HOME alike.
	differ=$(grep -v '	clean$' <<<"$drift" | cut -f1 | grep -vx '.config/old/rc')
	acted=$(cut -f1 <<<"$plan" | grep -vx '.profile')
	[ "$differ" = "$acted" ] || fail "differ: $differ" "acted: $acted"
}

@test "after apply, check-drift finds what apply left and nothing else" {
	git -C "$DOT" rm -q .config/old/rc
	git -C "$DOT" commit -qm 'remove old'
	printf 'my edit\n' >>"$HOME/.bashrc"
	rm "$HOME/.vimrc"
	rm "$HOME/.inputrc" && mkfifo "$HOME/.inputrc"
	rm -r "$HOME/.local/tool" && printf 'a file\n' >"$HOME/.local/tool"
	rm -r "$HOME/.config/old" && printf 'a file\n' >"$HOME/.config/old"
	run --separate-stderr timeout 20 heimdal apply
	expect_status 1
	[ "$(cat "$HOME/.vimrc")" = ".vimrc v1" ] || fail ".vimrc not restored"
	[ -p "$HOME/.inputrc" ] || fail "FIFO replaced"
	[ "$(cat "$HOME/.config/old")" = "a file" ] || fail "the file in the way was touched"
	# Missing here and gone upstream: nothing to keep, nothing said.
	[[ "$output" != *".config/old/rc"* ]] || fail "a missing file reported kept"
	[[ "$stderr" == *".local/tool/rc: is missing, and a file stands where its directory would be; skipped"* ]] ||
		fail "blocked file not reported"
	run --separate-stderr jq -e '.checksums | has(".config/old/rc") | not' "$HEIMDAL_HOME/state.json"
	expect_status 0
	# Gone from the repository and from HOME: no longer tracked, so not missing.
	run --separate-stderr timeout 20 heimdal state check-drift --json
	expect_status 1
	expect_json '.missing == [".local/tool/rc"] and ([.modified[].path] == [".bashrc"])
		and .errors == [{"path": ".inputrc", "error": "not a regular file"}]'
}
