# 50-drift.sh - heimdal-drift against sha256sum and git diff-files on a tree of
# 10k files (200 B - 8 KB, ~40 MB), heimdal apply against stow, and the peak
# memory of heimdal-drift on 100k files.
here=$(dirname "${BASH_SOURCE[0]}")
d="$BENCH_DIR/drift"
mkdir -p "$d/hh"
chmod 700 "$d/hh"
"$here/gen-state" 10000 "$d/home" >"$d/state.json"
find "$d/home" -type f | sort >"$d/list"
# Old files on both sides: neither git's index nor our cache sees a racy entry.
find "$d/home" -type f -exec touch -d '-1 hour' {} +
export HEIMDAL_HOME="$d/hh"
bench drift-full-hash-10k 0.20 "heimdal-drift --no-cache --root $d/home $d/state.json" \
	sha256sum "xargs -a $d/list -d '\n' sha256sum"
git -C "$d/home" init -q
git -C "$d/home" add -A
git -C "$d/home" update-index --refresh >/dev/null
heimdal-drift --root "$d/home" "$d/state.json" >/dev/null
bench drift-warm-cache-10k 1.0 "heimdal-drift --root $d/home $d/state.json" \
	"git diff-files" "git -C $d/home diff-files"
unset HEIMDAL_HOME

# apply of 1000 new files; stow links the same files.
a="$d/apply"
mkdir -p "$a/stow"
"$here/gen-state" 1000 "$a/dotfiles" |
	jq --arg r "$a/dotfiles" '.dotfiles_path = $r | .checksums = {}' >"$a/state.json"
cp -r "$a/dotfiles" "$a/stow/pkg"
git -C "$a/dotfiles" init -q
git -C "$a/dotfiles" add -A
git -C "$a/dotfiles" -c user.name=bench -c user.email=bench@example.invalid commit -qm bench
reset="rm -rf $a/home $a/target && mkdir -p $a/home/.heimdal $a/target && chmod 700 $a/home/.heimdal && cp $a/state.json $a/home/.heimdal/state.json"
bench apply-1000-new 1.0 "env HOME=$a/home HEIMDAL_HOME=$a/home/.heimdal heimdal apply" \
	"stow --no-folding" "stow --no-folding -d $a/stow -t $a/target pkg" --prepare "sh -c '$reset'"

# Peak memory on 100k files (cold: the state parsed; warm: the cache read).
m="$d/100k"
mkdir -p "$m/hh"
python3 - "$m" <<'PY'
import hashlib, json, os, sys
root = sys.argv[1]
sums = {}
for i in range(100000):
    rel = ".config/app%d/file%d.conf" % (i % 1000, i)
    path = os.path.join(root, "home", rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = (b"%d\n" % i) * (20 + i % 40)
    with open(path, "wb") as f:
        f.write(data)
    sums[rel] = hashlib.sha256(data).hexdigest()
with open(os.path.join(root, "state.json"), "w") as f:
    json.dump({"version": 2, "checksums": sums}, f, indent=2)
PY
find "$m/home" -type f -exec touch -d '-1 hour' {} +
for run in cold warm; do
	kb=$(HEIMDAL_HOME="$m/hh" /usr/bin/time -f %M heimdal-drift --root "$m/home" "$m/state.json" \
		2>&1 >/dev/null | tail -1)
	printf '%-34s %10s MiB  %-22s %13s  %7s  (target <= 64 MiB)\n' "drift-100k-peak-rss-$run" \
		"$((kb / 1024))" "" "" ""
done
