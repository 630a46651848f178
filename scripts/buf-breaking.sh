#!/usr/bin/env bash
# buf breaking against an earlier commit (default: the previous one; CI can pass the
# branch it merges into). The vendored third-party protos are not in git, so the old
# tree gets today's copy before buf builds it.
set -euo pipefail
cd "$(dirname "$0")/.."
against="${1:-HEAD~1}"
if ! git rev-parse -q --verify "$against^{commit}" >/dev/null 2>&1; then
  echo "buf-breaking: no commit $against to compare with; skipped"; exit 0
fi
if ! git cat-file -e "$against:buf.yaml" 2>/dev/null; then
  echo "buf-breaking: $against has no protos yet; skipped"; exit 0
fi
old=$(mktemp -d)
trap 'rm -rf "$old"' EXIT
git archive "$against" proto buf.yaml | tar -x -C "$old"
mkdir -p "$old/third_party" && cp -r third_party/proto "$old/third_party/"
(cd "$old" && "$OLDPWD/node_modules/.bin/buf" build -o "$old/image.binpb")
node_modules/.bin/buf build -o "$old/new.binpb"
node_modules/.bin/buf breaking "$old/new.binpb" --against "$old/image.binpb"
echo "buf-breaking: no breaking change against $against"
