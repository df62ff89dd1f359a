"""Prints one title's line of the ladder-vs-fixed table from the JSON of
`reel media ladder --compare-fixed --json`."""
import json
import sys

doc = json.load(sys.stdin)
title = sys.argv[1]


def pct(s):
    return f"{-s * 100:.1f}% more" if s < 0 else f"{s * 100:.1f}% fewer"


print(f"{title:<16} {len(doc['ladder']):>8} {pct(doc['fixed']['savings']):>22} {pct(doc['constant_crf']['savings']):>26}")
for r in doc["fixed"]["rungs"]:
    f, k = r["fixed"], r["per_title_kbps"]
    ours = f"{k:7.0f} kb/s" if k is not None else "not reached"
    print(f"    fixed {f['width']}x{f['height']} {f['kbps']:7.0f} kb/s VMAF {f['vmaf']:6.2f} -> per-shot {ours}")
