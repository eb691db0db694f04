# worlds.bash - the situations the crash and signal suites interrupt a
# command in, and saving and restoring them between two runs.  Load after
# helper and helper-git.  Each world_* sets REMOTE (a bare remote on disk),
# makes the machines, and leaves the command named in its comment with work
# to do.

# The world a command may touch: every machine and the remotes.
world_save() {
	rm -rf "$BATS_TEST_TMPDIR/saved"
	mkdir "$BATS_TEST_TMPDIR/saved"
	cp -a "$BATS_TEST_TMPDIR/machines" "$BATS_TEST_TMPDIR/remotes" "$BATS_TEST_TMPDIR/saved/"
}

world_restore() {
	rm -rf "$BATS_TEST_TMPDIR/machines" "$BATS_TEST_TMPDIR/remotes"
	cp -a "$BATS_TEST_TMPDIR/saved/machines" "$BATS_TEST_TMPDIR/saved/remotes" "$BATS_TEST_TMPDIR/"
}

# temporaries HOME: what apply and the atomic writers leave when killed
# (NAME.heimdal-PID-TAG.XXXXXX) under HOME, but a decoy named *.Decoy1.
temporaries() {
	find "$1" -path "$1/.heimdal/backups" -prune -o -type f \
		-name '*.heimdal-*-*.??????' ! -name '*.Decoy1' -print
}

# `heimdal apply` on a: .bashrc changed, .config/app/config and .vimrc new.
world_apply() {
	REMOTE=$(bare_remote)
	joined a
	commit_file a .bashrc 'export PS1=old'
	commit_file a .config/app/config 'key = old'
	as a heimdal apply >/dev/null
	commit_file a .bashrc 'export PS1=new'
	commit_file a .config/app/config "$(seq 1 2000)"
	commit_file a .vimrc 'set number'
}

# `heimdal commit -m ...` on a: .vimrc edited in $HOME since deployed.
world_commit() {
	REMOTE=$(bare_remote)
	joined a
	commit_file a .vimrc 'set number'
	as a heimdal apply >/dev/null
	printf 'alias ll="ls -l"\n' >>"$(mhome a)/.vimrc"
}

# `heimdal state resolve --merge` on b: a and b wrote the state apart.
world_resolve() {
	REMOTE=$(bare_remote)
	joined a b
	as a heimdal sync --no-apply >/dev/null
	record a apply
	record b apply
	as a heimdal sync --no-apply >/dev/null
}

# `heimdal sync` on b: a pushed a new .bashrc.
world_sync() {
	REMOTE=$(bare_remote)
	joined a b
	as a heimdal sync >/dev/null
	commit_file a .bashrc 'export FROM=a'
	as a heimdal push >/dev/null
}
