#!/usr/bin/env bats
# heimdal apply: deploying the dotfiles repository into $HOME.

load helper

setup() {
	setup_scratch
	cd "$BATS_TEST_TMPDIR"
	DOT="$HOME/.dotfiles"
	mkdir -p "$DOT/.config/app" "$DOT/bin" "$DOT/profiles/work" "$DOT/.heimdal"
	printf 'export PS1=base\n' >"$DOT/.bashrc"
	printf 'set number\n' >"$DOT/.vimrc"
	printf 'key = value\n' >"$DOT/.config/app/config"
	printf '#!/bin/sh\necho hi\n' >"$DOT/bin/hello"
	chmod +x "$DOT/bin/hello"
	printf 'export PS1=work\n' >"$DOT/profiles/work/.bashrc"
	printf '{}\n' >"$DOT/.heimdal/state.json"
	printf '*.log\nnotes/\n' >"$DOT/.heimdalignore"
	printf 'debug\n' >"$DOT/build.log"
	mkdir -p "$DOT/notes" && printf 'n\n' >"$DOT/notes/todo"
	printf 'untracked\n' >"$DOT/.untracked"
	dotfiles_repo .bashrc .vimrc .config bin profiles .heimdal .heimdalignore build.log notes
}

sha() { sha256sum "$1" | cut -c1-64; }

@test "apply --help; bad flags and profile names exit 2 with nothing on stdout" {
	run --separate-stderr heimdal apply --help
	expect_status 0
	[[ "$output" == "usage: heimdal apply"* ]] || fail "usage"
	run --separate-stderr heimdal apply --bogus
	expect_status 2
	[ -z "$output" ] || fail "stdout not empty"
	run --separate-stderr heimdal apply --profile ../x
	expect_status 2
	[[ "$stderr" == *"--profile"* ]] || fail "flag not named"
}

@test "apply --dry-run prints the plan and writes nothing" {
	printf 'mine\n' >"$HOME/.vimrc"
	before=$(snapshot "$HOME")
	run --separate-stderr heimdal apply --dry-run
	expect_status 1
	[ "$(snapshot "$HOME")" = "$before" ] || fail "dry run wrote"
	[[ "$output" == *"  new       .bashrc"* ]] || fail "plan: .bashrc"
	[[ "$output" == *"  new       bin/hello"* ]] || fail "plan: bin/hello"
	[[ "$output" == *"nothing was written"* ]] || fail "dry run not said"
	# A file the user already had, never recorded, is theirs: not overwritten.
	[[ "$stderr" == *".vimrc: exists here and was never deployed by heimdal; skipped"* ]] || fail "warning"
	[[ "$output" != *".heimdal"* && "$output" != *"profiles/"* ]] || fail "internal files deployed"
	[[ "$output" != *"build.log"* && "$output" != *"notes/todo"* ]] || fail ".heimdalignore ignored"
	[[ "$output" != *".untracked"* ]] || fail "untracked file deployed"
}

@test "apply deploys tracked files, keeps the executable bit, records checksums and the lineage" {
	run --separate-stderr heimdal apply
	expect_status 0
	cmp "$DOT/.bashrc" "$HOME/.bashrc"
	cmp "$DOT/.config/app/config" "$HOME/.config/app/config"
	[ -x "$HOME/bin/hello" ] || fail "executable bit lost"
	[ ! -x "$HOME/.vimrc" ] || fail "executable bit invented"
	[ ! -e "$HOME/build.log" ] && [ ! -e "$HOME/notes" ] && [ ! -e "$HOME/profiles" ] || fail "ignored files deployed"
	[ -z "$(find "$HOME" -name '*.heimdal-*')" ] || fail "temporaries left"
	head=$(git -C "$DOT" rev-parse HEAD)
	run --separate-stderr jq -e --arg b "$(sha "$HOME/.bashrc")" --arg h "$head" '
		.checksums[".bashrc"] == $b and (.checksums | keys) == [".bashrc", ".config/app/config", ".vimrc", "bin/hello"]
		and .last_apply == "2024-01-15T10:30:00Z" and .lineage.git_commit == $h
		and .history[-1].operation == "apply"' "$HEIMDAL_HOME/state.json"
	expect_status 0
	run --separate-stderr heimdal state check-drift
	expect_status 0
}

@test "--profile overlays profiles/NAME and becomes the active profile" {
	run --separate-stderr heimdal apply --profile work
	expect_status 0
	[ "$(cat "$HOME/.bashrc")" = "export PS1=work" ] || fail "overlay not used"
	run --separate-stderr jq -r .active_profile "$HEIMDAL_HOME/state.json"
	[ "$output" = work ] || fail "active profile"
	# Back to the base profile: the unchanged .bashrc is updated.
	run --separate-stderr heimdal apply --profile personal
	expect_status 0
	[[ "$output" == *"  updated   .bashrc"* ]] || fail "not updated"
	[ "$(cat "$HOME/.bashrc")" = "export PS1=base" ] || fail "base not restored"
}

@test "a file changed here and upstream on the same line is left (exit 1), the merge beside it; --force backs it up, then restores" {
	heimdal apply
	printf 'my edit\n' >>"$HOME/.bashrc"
	edited=$(cat "$HOME/.bashrc")
	old_sum=$(jq -r '.checksums[".bashrc"]' "$HEIMDAL_HOME/state.json")
	printf 'export PS1=new\n' >"$DOT/.bashrc"
	git -C "$DOT" commit -qam change
	run --separate-stderr heimdal apply
	expect_status 1
	[[ "$output" == *"  conflict  .bashrc (changed here and upstream)"* ]] || fail "not listed"
	[[ "$output" == *"heimdal resolve --theirs PATH"* ]] || fail "no way out"
	grep -qx '<<<<<<< here' "$HOME/.bashrc.heimdal-merge" || fail "no markers beside"
	grep -qx 'export PS1=new' "$HOME/.bashrc.heimdal-merge" || fail "upstream side missing"
	[ "$(cat "$HOME/.bashrc")" = "$edited" ] || fail "edit overwritten"
	run --separate-stderr jq -r '.checksums[".bashrc"]' "$HEIMDAL_HOME/state.json"
	[ "$output" = "$old_sum" ] || fail "checksum of a skipped file changed"
	run --separate-stderr heimdal apply --force
	expect_status 0
	[ "$(cat "$HOME/.bashrc")" = "export PS1=new" ] || fail "not restored"
	backup=$(find "$HEIMDAL_HOME/backups/files" -path '*/.bashrc')
	[ -n "$backup" ] || fail "no backup"
	[ "$(cat "$backup")" = "$edited" ] || fail "backup lost the edit"
	[ "$(stat -c %a "$backup")" = 600 ] || fail "backup mode"
	[[ "$output" == *"replaced  .bashrc (backup: $backup)"* ]] || fail "backup not shown"
}

@test "a symlinked target is never written through; --force backs the link up and replaces it" {
	outside="$BATS_TEST_TMPDIR/outside"
	mkdir -p "$outside"
	printf 'precious\n' >"$outside/vimrc"
	ln -s "$outside/vimrc" "$HOME/.vimrc"
	run --separate-stderr heimdal apply
	expect_status 1
	[[ "$stderr" == *".vimrc: is a symlink; not written through"* ]] || fail "no warning"
	[ -L "$HOME/.vimrc" ] && [ "$(cat "$outside/vimrc")" = precious ] || fail "written through"
	run --separate-stderr heimdal apply --force
	expect_status 0
	[ ! -L "$HOME/.vimrc" ] && cmp "$DOT/.vimrc" "$HOME/.vimrc" || fail "link not replaced"
	[ "$(cat "$outside/vimrc")" = precious ] || fail "link target touched"
	backup=$(find "$HEIMDAL_HOME/backups/files" -name .vimrc)
	[ "$(readlink "$backup")" = "$outside/vimrc" ] || fail "link not backed up"
}

@test "a target whose directory resolves outside HOME is skipped even with --force" {
	outside="$BATS_TEST_TMPDIR/outside"
	mkdir -p "$outside"
	ln -s "$outside" "$HOME/.config"
	run --separate-stderr heimdal apply --force --dry-run
	expect_status 1
	[[ "$stderr" == *".config/app/config: its directory resolves outside \$HOME; skipped"* ]] || fail "no warning"
	run --separate-stderr heimdal apply --force
	expect_status 1
	[ -z "$(ls -A "$outside")" ] || fail "wrote outside HOME"
	cmp "$DOT/.bashrc" "$HOME/.bashrc"
}

@test "a file removed from the repo is removed from HOME if unchanged, else kept and reported" {
	heimdal apply
	printf 'local change\n' >>"$HOME/.config/app/config"
	git -C "$DOT" rm -q .vimrc .config/app/config
	git -C "$DOT" commit -qm remove
	run --separate-stderr heimdal apply
	expect_status 0
	[ ! -e "$HOME/.vimrc" ] || fail "unchanged file not removed"
	[[ "$output" == *"  removed   .vimrc"* ]] || fail "removal not reported"
	[ "$(tail -1 "$HOME/.config/app/config")" = "local change" ] || fail "changed file lost"
	[[ "$output" == *"  kept      .config/app/config"* ]] || fail "kept file not reported"
	run --separate-stderr jq -e '.checksums | has(".vimrc") or has(".config/app/config") | not' "$HEIMDAL_HOME/state.json"
	expect_status 0
}

@test "a failed write phase leaves every target old and no temporaries" {
	command -v chattr >/dev/null || skip "no chattr"
	heimdal apply
	printf 'export PS1=v2\n' >"$DOT/.bashrc"
	printf 'key = v2\n' >"$DOT/.config/app/config"
	git -C "$DOT" commit -qam v2
	chattr +i "$HOME/.config/app" 2>/dev/null || skip "immutable directories not supported here"
	state_before=$(cat "$HEIMDAL_HOME/state.json")
	run --separate-stderr heimdal apply
	chattr -i "$HOME/.config/app"
	expect_status 3
	[ "$(cat "$HOME/.bashrc")" = "export PS1=base" ] || fail ".bashrc changed though the apply failed"
	[ "$(cat "$HOME/.config/app/config")" = "key = value" ] || fail "config changed"
	[ -z "$(find "$HOME" -name '*.heimdal-*')" ] || fail "temporaries left"
	[ "$(cat "$HEIMDAL_HOME/state.json")" = "$state_before" ] || fail "state changed"
}

@test "without heimdal-lineage, apply refuses before writing anything (exit 3)" {
	bin="$BATS_TEST_TMPDIR/bin"
	mkdir -p "$bin"
	for t in heimdal heimdal-drift heimdal-migrate; do cp "$(command -v $t)" "$bin/"; done
	before=$(snapshot "$HOME")
	run --separate-stderr env PATH=/usr/bin:/bin "$bin/heimdal" apply
	expect_status 3
	[[ "$stderr" == *"heimdal-lineage was not found"* ]] || fail "tool not named"
	[ "$(snapshot "$HOME")" = "$before" ] || fail "files changed"
}

# Peak resident memory (KiB) of a command, through getrusage of the child.
peak_kib() {
	python3 -c 'import resource,subprocess,sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(r.returncode)' "$@"
}

@test "apply streams contents: 384 MiB of dotfiles deploy, update and back up within 64 MiB" {
	for f in big1 big2 big3; do head -c 128M /dev/zero >"$DOT/$f"; done
	git -C "$DOT" add big1 big2 big3
	git -C "$DOT" commit -qm big
	run peak_kib heimdal apply
	expect_status 0
	[ "$output" -lt 65536 ] || fail "apply used ${output} KiB for new files"
	cmp "$DOT/big2" "$HOME/big2"
	# Upstream changes big1 (update, through the record); big3 changes both
	# here and upstream, so --force replaces it with a backup of 128 MiB.
	printf 'upstream\n' | tee -a "$DOT/big1" >>"$DOT/big3" && git -C "$DOT" commit -qam up
	printf 'here\n' >>"$HOME/big3"
	printf 'work tree\n' >>"$DOT/big2" # not committed: its blob is streamed in
	run peak_kib heimdal apply --force
	expect_status 0
	[ "$output" -lt 65536 ] || fail "apply used ${output} KiB for updates"
	cmp "$DOT/big1" "$HOME/big1" && cmp "$DOT/big2" "$HOME/big2" && cmp "$DOT/big3" "$HOME/big3"
	backup=$(find "$HEIMDAL_HOME/backups/files" -name big3)
	[ "$(tail -c 5 "$backup")" = here ] || fail "no backup of the changed file"
	blob=$(jq -r '.files.big2.blob' "$HEIMDAL_HOME/deployed.json")
	[ "$(git -C "$DOT" cat-file -t "$blob")" = blob ] || fail "the deployed blob is not kept"
	[ "$(git -C "$DOT" hash-object big2)" = "$blob" ]
}

@test "apply reads the repository's files through no symlink: a linked directory in the work tree is skipped" {
	outside="$BATS_TEST_TMPDIR/outside"
	mkdir -p "$outside" && printf 'secret\n' >"$outside/config"
	heimdal apply >/dev/null
	rm -rf "$DOT/.config/app" && ln -s "$outside" "$DOT/.config/app"
	printf 'x\n' >"$HOME/.config/app/config.new"
	run --separate-stderr heimdal apply
	expect_status 1
	[[ "$stderr" == *".config/app/config: cannot be read from the repository; skipped"* ]] || fail "no warning: $stderr"
	[ "$(cat "$HOME/.config/app/config")" = "key = value" ] || fail "deployed through the link"
}

@test "a new file gets the repository's mode under the umask; an update never loosens the mode here" {
	umask 022
	heimdal apply >/dev/null
	[ "$(stat -c %a "$HOME/.bashrc")" = 644 ] && [ "$(stat -c %a "$HOME/bin/hello")" = 755 ] || fail "umask 022"
	rm -rf "$HOME/.bashrc" "$HOME/bin" "$HEIMDAL_HOME/deployed.json"
	umask 077
	heimdal apply >/dev/null
	[ "$(stat -c %a "$HOME/.bashrc")" = 600 ] || fail "umask 077: $(stat -c %a "$HOME/.bashrc")"
	[ "$(stat -c %a "$HOME/bin/hello")" = 700 ] || fail "umask 077 exec: $(stat -c %a "$HOME/bin/hello")"
	umask 022
	printf 'export PS1=new\n' >"$DOT/.bashrc" && git -C "$DOT" commit -qam up
	heimdal apply >/dev/null
	[ "$(stat -c %a "$HOME/.bashrc")" = 600 ] || fail "the update loosened 600"
	[ "$(cat "$HOME/.bashrc")" = "export PS1=new" ]
}
