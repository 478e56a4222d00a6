#!/usr/bin/env bash
# Stop the sshd that sshd-up.sh started in DIR, and the session processes it
# forked for its clients; nothing else. The listener is found by its pid file
# and recognised by its own config path on its command line; its sessions are
# its descendants. Keys and config stay, so sshd-up.sh DIR starts it again.
set -u
D=${1:?usage: sshd-down.sh DIR}
D=$(cd "$D" 2>/dev/null && pwd) || exit 0
[ -s "$D/sshd.pid" ] || exit 0
pid=$(cat "$D/sshd.pid")
if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-f $D/sshd_config"; then
    rm -f "$D/sshd.pid"   # not running any more (or the pid was reused): nothing of ours
    exit 0
fi

declare -A kids  # parent pid -> its children, from one pass over /proc (no procps needed)
for stat in /proc/[0-9]*/stat; do
    { read -r line <"$stat"; } 2>/dev/null || continue
    rest=${line##*) }   # after "pid (comm) ": state ppid ...
    ppid=${rest#* }
    ppid=${ppid%% *}
    child=${stat#/proc/}
    kids[$ppid]+=" ${child%/stat}"
done
descendants() {  # every process below $1
    local child
    for child in ${kids[$1]-}; do
        echo "$child"
        descendants "$child"
    done
}
victims="$pid $(descendants "$pid")"
running() {  # alive and not a zombie waiting for its parent
    local line
    { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
    line=${line##*) }
    [ "${line%% *}" != Z ]
}
kill $victims 2>/dev/null
for _ in $(seq 1 100); do
    alive=
    for p in $victims; do running "$p" && alive="$alive $p"; done
    [ -z "$alive" ] && break
    sleep 0.05
done
[ -z "$alive" ] || kill -9 $alive 2>/dev/null
rm -f "$D/sshd.pid"
