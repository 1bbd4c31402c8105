#!/usr/bin/env python3
"""Build the train/valid/test split of the English corpus for eddy's test model.

Source: Debian's `fortunes` and `fortunes-min` packages (short English texts,
quotes and jokes), installed by scripts/setup-corpus.sh. Records are the
`%`-separated entries; each record goes to train/valid/test by a stable hash
of its text (90/5/5), so the split never depends on file order.
"""
import hashlib
import os
import subprocess
import sys

SRC = "/usr/share/games/fortunes"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "data", "fortunes")


def records():
    for name in sorted(os.listdir(SRC)):
        path = os.path.join(SRC, name)
        if name.endswith((".dat", ".u8")) or os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            raw = f.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        for rec in text.split("\n%\n"):
            rec = "\n".join(line.rstrip() for line in rec.strip("\n%").split("\n")).strip()
            if rec:
                yield name, rec


def split_of(rec):
    h = int.from_bytes(hashlib.sha256(rec.encode("utf-8")).digest()[:8], "little") % 100
    return "test" if h < 5 else "valid" if h < 10 else "train"


def main():
    if not os.path.isdir(SRC):
        sys.exit(f"{SRC} not found: run scripts/setup-corpus.sh (installs Debian's fortunes packages)")
    os.makedirs(OUT, exist_ok=True)
    parts = {"train": [], "valid": [], "test": []}
    seen = set()
    files = set()
    for name, rec in records():
        if rec in seen:
            continue
        seen.add(rec)
        files.add(name)
        parts[split_of(rec)].append(rec)
    lines = ["# fortunes corpus split", ""]
    pkgs = subprocess.run(["dpkg-query", "-W", "fortunes", "fortunes-min"], capture_output=True, text=True).stdout
    lines += ["Source: Debian packages (name, version):", "", "```", pkgs.strip(), "```", ""]
    lines += [f"Files: {', '.join(sorted(files))} in {SRC} (`.dat`/`.u8` and links skipped).", ""]
    lines += [
        "Rule: split on `%` lines into records, strip trailing spaces, drop duplicates;",
        "record r goes to test if sha256(r)[0:8] (little-endian) mod 100 < 5, valid if < 10,",
        "else train. Records are joined with one blank line (\"\\n\\n\").",
        "",
        "| split | records | bytes | sha256 |",
        "|---|---|---|---|",
    ]
    for split, recs in parts.items():
        data = ("\n\n".join(recs) + "\n").encode("utf-8")
        with open(os.path.join(OUT, f"{split}.txt"), "wb") as f:
            f.write(data)
        lines.append(f"| {split} | {len(recs)} | {len(data)} | {hashlib.sha256(data).hexdigest()} |")
    with open(os.path.join(OUT, "SPLIT.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
