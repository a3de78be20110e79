/**
 * Failover safety settings of `ha-signer serve` (docs/protection.md): require synchronous replication, and keep
 * external high-water marks so a database that went back in time is detected. Read from the environment,
 * validated with errors naming the variable.
 */
import { isAbsolute } from 'node:path';
import { SAFETY_ENV } from '../contract.js';
import {
  ConfigError,
  type CreateHASignerDeps,
  FileHighWaterMarkStore,
  type HighWaterMarkStore,
  parseBoolean,
} from '../protection/index.js';
import { underFsRoot } from './config.js';

type Env = Readonly<Record<string, string | undefined>>;

export interface SafetySettings {
  requireSynchronousReplication: boolean;
  /** Absolute path (under HA_SIGNER_FS_ROOT) of the high-water mark file; undefined: no file store. */
  highWaterMarksFile: string | undefined;
}

export function safetyFromEnv(env: Env, fsRoot: string): SafetySettings {
  const raw = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const required = raw(SAFETY_ENV.requireSynchronousReplication);
  const file = raw(SAFETY_ENV.highWaterMarksFile);
  if (file !== undefined && !isAbsolute(file))
    throw new ConfigError(
      SAFETY_ENV.highWaterMarksFile,
      `expected an absolute path on storage not restored with the database, got ${JSON.stringify(file)}`,
    );
  return {
    requireSynchronousReplication: required === undefined ? false : parseBoolean(SAFETY_ENV.requireSynchronousReplication, required),
    highWaterMarksFile: file === undefined ? undefined : underFsRoot(fsRoot, file),
  };
}

/** The createHASigner dependencies these settings ask for (`store` overrides the file store, e.g. a Kubernetes one). */
export function safetyDeps(
  settings: SafetySettings,
  store?: HighWaterMarkStore,
): Pick<CreateHASignerDeps, 'requireSynchronousReplication' | 'highWaterMarks'> {
  const marks = store ?? (settings.highWaterMarksFile ? new FileHighWaterMarkStore(settings.highWaterMarksFile) : undefined);
  return { requireSynchronousReplication: settings.requireSynchronousReplication, ...(marks ? { highWaterMarks: marks } : {}) };
}
