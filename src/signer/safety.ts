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
import { ConfigMapHighWaterMarkStore } from './kube-high-water-marks.js';

type Env = Readonly<Record<string, string | undefined>>;

export interface SafetySettings {
  requireSynchronousReplication: boolean;
  /** Absolute path (under HA_SIGNER_FS_ROOT) of the high-water mark file; undefined: no file store. */
  highWaterMarksFile: string | undefined;
  /** `<namespace>/<name>` of the high-water mark ConfigMap; undefined: none. */
  highWaterMarksConfigMap: { namespace: string; name: string } | undefined;
  /** HA_SIGNER_FS_ROOT: where the in-cluster ServiceAccount token is read for the ConfigMap store. */
  fsRoot?: string;
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
  const configMap = raw(SAFETY_ENV.highWaterMarksConfigMap);
  const parts = configMap?.split('/');
  const dns = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
  if (configMap !== undefined && (parts?.length !== 2 || !parts.every((p) => dns.test(p))))
    throw new ConfigError(
      SAFETY_ENV.highWaterMarksConfigMap,
      `expected <namespace>/<name> of a ConfigMap, got ${JSON.stringify(configMap)}`,
    );
  if (configMap !== undefined && file !== undefined)
    throw new ConfigError(SAFETY_ENV.highWaterMarksConfigMap, `set either it or ${SAFETY_ENV.highWaterMarksFile}, not both`);
  return {
    highWaterMarksConfigMap: parts && configMap !== undefined ? { namespace: parts[0]!, name: parts[1]! } : undefined,
    requireSynchronousReplication: required === undefined ? false : parseBoolean(SAFETY_ENV.requireSynchronousReplication, required),
    highWaterMarksFile: file === undefined ? undefined : underFsRoot(fsRoot, file),
    fsRoot,
  };
}

/** The createHASigner dependencies these settings ask for (`store` overrides the file store, e.g. a Kubernetes one). */
export function safetyDeps(
  settings: SafetySettings,
  store?: HighWaterMarkStore,
): Pick<CreateHASignerDeps, 'requireSynchronousReplication' | 'highWaterMarks'> {
  const { highWaterMarksFile: file, highWaterMarksConfigMap: map } = settings;
  const marks =
    store ??
    (file
      ? new FileHighWaterMarkStore(file)
      : map
        ? ConfigMapHighWaterMarkStore.fromDefaultConfig(map.namespace, map.name, settings.fsRoot)
        : undefined);
  return { requireSynchronousReplication: settings.requireSynchronousReplication, ...(marks ? { highWaterMarks: marks } : {}) };
}
