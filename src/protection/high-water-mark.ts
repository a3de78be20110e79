/**
 * High-water marks kept outside the database: per validator and duty kind, the highest slot signed. A database
 * restored from a backup, or a standby promoted while it lagged, holds less history than these marks; the history
 * guard (history-guard.ts) detects that and refuses the duties it could sign twice.
 *
 * Library users plug in any HighWaterMarkStore; FileHighWaterMarkStore serves simple setups (one host, a volume
 * that survives the database), and the signer's Kubernetes store keeps them in a ConfigMap per resource.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError } from './errors.js';
import { type DutyType, isProtectedDutyType } from './types.js';

/** Marks of one rollup: `<validator>/<duty type>` → highest signed slot. */
export type HighWaterMarks = Map<string, bigint>;

export const markKey = (validatorAddress: string, dutyType: DutyType | string): string => `${validatorAddress}/${dutyType}`;

export function splitMarkKey(key: string): { validatorAddress: string; dutyType: DutyType } {
  const [validatorAddress, dutyType] = key.split('/') as [string, DutyType];
  return { validatorAddress, dutyType };
}

/** Raises `into` by every mark of `from` (never lowers); true when something rose. */
export function mergeMarks(into: HighWaterMarks, from: HighWaterMarks): boolean {
  let raised = false;
  for (const [key, slot] of from) {
    const current = into.get(key);
    if (current === undefined || slot > current) {
      into.set(key, slot);
      raised = true;
    }
  }
  return raised;
}

export interface HighWaterMarkStore {
  /** The marks stored for the rollup (empty when none). Throws when the store cannot be read (fail closed). */
  read(rollupAddress: string): Promise<HighWaterMarks>;
  /** Raises the stored marks of the rollup to at least these; never lowers one (concurrent writers merge by max). */
  raise(rollupAddress: string, marks: HighWaterMarks): Promise<void>;
}

/** Serialized form (JSON; slots as decimal strings): `{ "<rollup>": { "<validator>": { "<duty type>": "<slot>" } } }`. */
export type MarksDocument = Record<string, Record<string, Record<string, string>>>;

export const MARKS_FORMAT = 'ha-signer-high-water-marks';

/** Parses the marks of one rollup from a document, naming the bad field (a corrupt store is refused, not ignored). */
export function marksFromDocument(doc: unknown, rollupAddress: string, where: string): HighWaterMarks {
  const marks: HighWaterMarks = new Map();
  if (doc === undefined || doc === null) return marks;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(where, 'expected a JSON object of rollups');
  const rollup = (doc as MarksDocument)[rollupAddress];
  if (rollup === undefined) return marks;
  for (const [validator, kinds] of Object.entries(rollup)) {
    if (!/^0x[0-9a-f]{40}$/.test(validator))
      throw new ConfigError(`${where}: ${rollupAddress}`, `bad validator address ${JSON.stringify(validator)}`);
    for (const [dutyType, slot] of Object.entries(kinds)) {
      if (!isProtectedDutyType(dutyType as DutyType))
        throw new ConfigError(`${where}: ${rollupAddress}.${validator}`, `unknown duty type ${JSON.stringify(dutyType)}`);
      if (typeof slot !== 'string' || !/^(0|[1-9][0-9]*)$/.test(slot))
        throw new ConfigError(
          `${where}: ${rollupAddress}.${validator}.${dutyType}`,
          `expected a decimal slot string, got ${JSON.stringify(slot)}`,
        );
      marks.set(markKey(validator, dutyType), BigInt(slot));
    }
  }
  return marks;
}

/** Writes the marks of one rollup into a document (merged by max with what it holds). */
export function documentWithMarks(doc: MarksDocument, rollupAddress: string, marks: HighWaterMarks): MarksDocument {
  const merged = marksFromDocument(doc, rollupAddress, 'document');
  mergeMarks(merged, marks);
  const rollup: Record<string, Record<string, string>> = {};
  for (const [key, slot] of [...merged].sort(([a], [b]) => a.localeCompare(b))) {
    const { validatorAddress, dutyType } = splitMarkKey(key);
    (rollup[validatorAddress] ??= {})[dutyType] = slot.toString();
  }
  return { ...doc, [rollupAddress]: rollup };
}

/**
 * One JSON file (`{"format": "ha-signer-high-water-marks", "rollups": {...}}`), replaced atomically (write, then
 * rename). Put it on storage that is not restored with the database. Concurrent processes on one file merge by max
 * on each write; a raise lost in a race between two processes only leaves a lower mark (weaker, never wrong).
 */
export class FileHighWaterMarkStore implements HighWaterMarkStore {
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  private async readDocument(): Promise<MarksDocument> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw error;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new ConfigError(this.path, `high-water mark file is not JSON (${(error as Error).message}); restore it or remove it knowingly`);
    }
    const file = parsed as { format?: unknown; rollups?: unknown };
    if (file.format !== MARKS_FORMAT) throw new ConfigError(this.path, `expected "format": "${MARKS_FORMAT}"`);
    return (file.rollups ?? {}) as MarksDocument;
  }

  async read(rollupAddress: string): Promise<HighWaterMarks> {
    return marksFromDocument(await this.readDocument(), rollupAddress, this.path);
  }

  async raise(rollupAddress: string, marks: HighWaterMarks): Promise<void> {
    const run = this.writing.then(async () => {
      const doc = documentWithMarks(await this.readDocument(), rollupAddress, marks);
      await mkdir(dirname(this.path), { recursive: true });
      const staging = `${this.path}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(staging, `${JSON.stringify({ format: MARKS_FORMAT, rollups: doc }, null, 2)}\n`, { mode: 0o600 });
      await rename(staging, this.path);
    });
    this.writing = run.catch(() => {});
    await run;
  }
}
