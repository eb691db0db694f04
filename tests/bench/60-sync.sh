# 60-sync.sh - heimdal sync with nothing to do against `git pull`, heimdal
# push of a one-file change against git add/commit/push, and a sync that
# brings one edited file and sends one against git pull + git push of the
# same change, over git daemon on loopback.
for t in lineage conflicts merge migrate; do
	command -v "heimdal-$t" >/dev/null || {
		printf '%-34s %s\n' sync "skipped: heimdal-$t is not built"
		return 0
	}
done
s="$BENCH_DIR/sync"
mkdir -p "$s/srv" "$s/home/.heimdal"
export HOME="$s/home" HEIMDAL_HOME="$s/home/.heimdal"
printf '[user]\n\tname = Bench\n\temail = bench@example.invalid\n[init]\n\tdefaultBranch = main\n' \
	>"$HOME/.gitconfig"
git init -q --bare "$s/srv/h.git"
git init -q --bare "$s/srv/g.git"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
git daemon --enable=receive-pack --export-all --reuseaddr --base-path="$s/srv" \
	--listen=127.0.0.1 --port="$port" --pid-file="$s/daemon.pid" --detach "$s/srv"
trap 'kill "$(cat "$s/daemon.pid" 2>/dev/null)" 2>/dev/null' EXIT
for i in $(seq 50); do
	python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null && break
	sleep 0.1
done
# A repository of a realistic size: 200 dotfiles.
heimdal init --profile bench --repo "git://127.0.0.1:$port/h.git" --empty >/dev/null
for i in $(seq 200); do
	mkdir -p "$HOME/.dotfiles/.config/app$((i % 20))"
	printf 'setting %d\n' "$i" >"$HOME/.dotfiles/.config/app$((i % 20))/file$i.conf"
done
git -C "$HOME/.dotfiles" add -A && git -C "$HOME/.dotfiles" commit -qm files
heimdal sync --no-apply >/dev/null
git clone -q "git://127.0.0.1:$port/g.git" "$s/g" 2>/dev/null
cp -r "$HOME/.dotfiles/.config" "$s/g/" && git -C "$s/g" add -A && git -C "$s/g" commit -qm files &&
	git -C "$s/g" push -q origin main

bench sync-nothing-to-do 0.4 "heimdal sync --no-apply" \
	"git pull" "git -C $HOME/.dotfiles pull -q"
# Each run changes one file first: heimdal's state, and a dotfile for git.
bench push-one-file 1.0 "heimdal push" \
	"git add+commit+push" "git -C $s/g add -A && git -C $s/g commit -qm x && git -C $s/g push -q" \
	--prepare "jq --arg t \$(date +%s%N) '.last_apply = \"2024-01-15T10:30:00Z\" | .heimdal_version = \$t' $HEIMDAL_HOME/state.json > $s/st && cat $s/st > $HEIMDAL_HOME/state.json && date +%s%N > $s/g/.config/app1/file1.conf"
# Another machine pushes an edit of one file; this one committed an edit of
# another: the sync merges, deploys the one and pushes the other.
heimdal sync >/dev/null
git clone -q "git://127.0.0.1:$port/h.git" "$s/hb" 2>/dev/null
git clone -q "git://127.0.0.1:$port/g.git" "$s/gb" 2>/dev/null
edit_other="date +%s%N > $s/hb/.config/app2/file2.conf && git -C $s/hb commit -qam b && git -C $s/hb pull -q --no-rebase && git -C $s/hb push -q"
edit_here="date +%s%N > $HOME/.config/app1/file1.conf && heimdal commit -m a >/dev/null"
bench sync-one-file-each-way 1.0 "heimdal sync" \
	"git pull + git push" "git -C $s/g pull -q --no-rebase && git -C $s/g push -q" \
	--prepare "$edit_other && $edit_here" \
	--prepare "date +%s%N > $s/gb/.config/app2/file2.conf && git -C $s/gb commit -qam b && git -C $s/gb pull -q --no-rebase && git -C $s/gb push -q && date +%s%N > $s/g/.config/app1/file1.conf && git -C $s/g commit -qam a"
unset HOME HEIMDAL_HOME
