#!/usr/bin/env bats
# heimdal commit: accepting changes made in $HOME into the dotfiles repository.

load helper

setup() {
	setup_scratch
	cd "$BATS_TEST_TMPDIR"
	DOT="$HOME/.dotfiles"
	mkdir -p "$DOT/profiles/work"
	printf 'export PS1=base\n' >"$DOT/.bashrc"
	printf 'set number\n' >"$DOT/.vimrc"
	printf 'export PS1=work\n' >"$DOT/profiles/work/.bashrc"
	dotfiles_repo
}

@test "commit without -m exits 2 and changes nothing" {
	printf 'edited\n' >"$HOME/.bashrc"
	before=$(snapshot "$HOME")
	run --separate-stderr heimdal commit
	expect_status 2
	[ -z "$output" ] || fail "stdout not empty"
	[[ "$stderr" == *"-m MESSAGE"* ]] || fail "flag not named"
	[ "$(snapshot "$HOME")" = "$before" ] || fail "files changed"
	run --separate-stderr heimdal commit --help
	expect_status 0
	[[ "$output" == "usage: heimdal commit -m MESSAGE"* ]] || fail "usage"
}

@test "round trip: edit, check-drift finds it, commit accepts it into a git commit with the state" {
	heimdal apply
	printf 'alias ll="ls -l"\n' >>"$HOME/.vimrc"
	run --separate-stderr heimdal state check-drift
	expect_status 1
	[[ "$output" == *"  * .vimrc"* ]] || fail "drift not found"
	run --separate-stderr heimdal commit -m "Accept .vimrc changes"
	expect_status 0
	[[ "$output" == *"accepted  .vimrc -> .vimrc"* ]] || fail "not reported"
	[[ "$output" == *"] Accept .vimrc changes"* ]] || fail "commit not reported"
	run --separate-stderr heimdal state check-drift
	expect_status 0
	cmp "$HOME/.vimrc" "$DOT/.vimrc"
	[ "$(git -C "$DOT" log -1 --format=%s)" = "Accept .vimrc changes" ] || fail "no commit"
	run git -C "$DOT" show --name-only --format= HEAD
	[[ "$output" == *".vimrc"* && "$output" == *".heimdal/state.json"* ]] || fail "commit content: $output"
	git -C "$DOT" show HEAD:.vimrc | grep -q 'alias ll'
	# The committed state is the local state, with the commit in its history.
	diff <(git -C "$DOT" show HEAD:.heimdal/state.json | jq -S .) <(jq -S . "$HEIMDAL_HOME/state.json")
	run --separate-stderr jq -e '.history[-1].operation == "commit" and (.checksums[".vimrc"] | length) == 64' \
		"$HEIMDAL_HOME/state.json"
	expect_status 0
	[ -z "$(git -C "$DOT" status --porcelain --untracked-files=no)" ] || fail "changes left uncommitted"
}

@test "a file deployed from the active profile is committed back into the profile" {
	heimdal apply --profile work
	printf 'export EDITOR=vim\n' >>"$HOME/.bashrc"
	run --separate-stderr heimdal commit -m "work bashrc"
	expect_status 0
	[[ "$output" == *"accepted  .bashrc -> profiles/work/.bashrc"* ]] || fail "wrong destination"
	cmp "$HOME/.bashrc" "$DOT/profiles/work/.bashrc"
	[ "$(cat "$DOT/.bashrc")" = "export PS1=base" ] || fail "base file changed"
}

@test "nothing to commit says so and exits 0 without a new git commit" {
	heimdal apply
	heimdal commit -m first >/dev/null || true
	head=$(git -C "$DOT" rev-parse HEAD)
	run --separate-stderr heimdal commit -m "nothing"
	expect_status 0
	[[ "$output" == "Nothing to commit"* ]] || fail "not said"
	[ "$(git -C "$DOT" rev-parse HEAD)" = "$head" ] || fail "a commit was made"
}

@test "tracked changes in the repository are committed too; the author falls back to user@hostname" {
	heimdal apply
	printf 'set ruler\n' >>"$DOT/.vimrc"
	rm -f "$HOME/.gitconfig"
	run env XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/noxdg" GIT_CONFIG_NOSYSTEM=1 heimdal commit -m "repo edit"
	expect_status 0
	git -C "$DOT" show HEAD:.vimrc | grep -q 'set ruler'
	author=$(git -C "$DOT" log -1 --format='%an <%ae>')
	if [ ! -e /etc/gitconfig ]; then
		[ "$author" = "$USER <$USER@test-host>" ] || fail "author: $author"
	fi
}

@test "commit uses the author from git config" {
	heimdal apply
	git -C "$DOT" config user.name "Dot Owner"
	git -C "$DOT" config user.email "owner@example.invalid"
	printf 'x\n' >>"$HOME/.vimrc"
	run --separate-stderr heimdal commit -m "configured author"
	expect_status 0
	[ "$(git -C "$DOT" log -1 --format='%an <%ae>')" = "Dot Owner <owner@example.invalid>" ] || fail "author"
}
