#!/usr/bin/env bash
# Copies the committed test captures into the fuzz corpus (not committed:
# fuzz/corpus/ is in .gitignore). Usage: fuzz/seed-corpus.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p fuzz/corpus/analyze
cp testdata/*.pcap testdata/*.pcapng fuzz/corpus/analyze/
# The third-party captures (small ones only).
find testdata/third-party -maxdepth 1 -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) \
  -size -256k -exec cp {} fuzz/corpus/analyze/ \;
ls fuzz/corpus/analyze | wc -l
