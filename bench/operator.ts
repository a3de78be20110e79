/**
 * The operator benchmark alone (the same as `npm run bench` section operator): see bench/lib/operator.ts.
 * Usage: npm run build && node bench/operator.ts [--resources 200] [--ready-resources 5] [--repeats 1] [--json]
 *   --resources        ValidatorHASigners in the control-loop scale test (0: leave it out)
 *   --ready-resources  ValidatorHASigners applied one at a time with real signer pods (0: leave it out)
 *   --json             print the result as JSON instead of markdown
 * Builds the control-plane binaries first when missing and Go is installed (bash test/control-plane/build.sh).
 */
import { parseArgs } from 'node:util';
import { renderOperatorSection, runOperatorBench } from './lib/operator.ts';

const { values: args } = parseArgs({
  options: {
    resources: { type: 'string', default: '200' },
    'ready-resources': { type: 'string', default: '5' },
    repeats: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const count = (flag: string, value: string): number => {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new Error(`--${flag}: expected a whole number, got ${JSON.stringify(value)}`);
  return n;
};
const result = await runOperatorBench({
  resources: count('resources', args.resources),
  readyResources: count('ready-resources', args['ready-resources']),
  repeats: count('repeats', args.repeats),
  log: (line) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`),
});
console.log(args.json ? JSON.stringify(result, null, 2) : renderOperatorSection(result));
