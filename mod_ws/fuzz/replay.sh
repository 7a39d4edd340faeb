#!/bin/sh
# Replays each fuzz target's corpus (corpus/<target>/ in the source tree)
# through its replay_<target> binary.  An empty or missing corpus fails:
# a replay of nothing would pass without testing anything.
srcdir=${srcdir:-.}
status=0
for target in session handshake utf8 hubwire deflate; do
    dir="$srcdir/corpus/$target"
    count=$(find "$dir" -maxdepth 1 -type f 2>/dev/null | wc -l)
    if [ "$count" -eq 0 ]; then
        echo "FAIL: corpus $dir is empty or missing" >&2
        status=1
        continue
    fi
    if ./replay_$target "$dir"; then
        echo "ok: $target ($count inputs)"
    else
        echo "FAIL: replay_$target on $dir" >&2
        status=1
    fi
done
exit $status
