"""davgate's benchmark: davgate and its anchors on the same data, interleaved (see bench/run.sh)."""
