/** The ValidatorHASigner custom resource (validatorhasigners.ha-signer.dev/v1alpha1) as TypeScript types. */
import type * as k8s from '@kubernetes/client-node';
import type { TlsSpec } from './desired/tls.js';

export const GROUP = 'ha-signer.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'ValidatorHASigner';
export const PLURAL = 'validatorhasigners';

export interface SecretKeyRef {
  name: string;
  key?: string;
}

/** A stock Aztec validator node signing through the protected JSON-RPC with a generated URL secret. */
export interface AztecNodeClient {
  name: string;
  validators: string[];
  nodeIds?: string[];
  allowUnclaimedDigests?: boolean;
  allowTransactions?: boolean;
  /** NetworkPolicy peers of the node's pods. */
  from?: k8s.V1NetworkPolicyPeer[];
}

export interface ValidatorHASignerSpec {
  rollup: { address: string; version: string };
  database: { secretRef: SecretKeyRef; requireSynchronousReplication?: boolean };
  keys: {
    secretRef?: { name: string };
    passwordSecretRef?: SecretKeyRef;
    web3signer?: { url: string };
  };
  replicas?: number;
  image?: string;
  imagePullPolicy?: string;
  imagePullSecrets?: { name: string }[];
  signing?: {
    pollingIntervalMs?: number;
    signingTimeoutMs?: number;
    maxStuckDutiesAgeMs?: number;
    signingOperationTimeoutMs?: number;
    oldDutiesMaxAgeHours?: number;
  };
  pool?: { max?: number; min?: number; idleTimeoutMs?: number; connectionTimeoutMs?: number };
  clients?: {
    disableAuthentication?: boolean;
    serviceAccounts?: { namespace?: string; name: string; validators: string[]; podSelector?: k8s.V1LabelSelector }[];
    tokens?: { secretRef: SecretKeyRef; from?: k8s.V1NetworkPolicyPeer[] };
    aztecNodes?: AztecNodeClient[];
  };
  jsonRpc?: boolean;
  migration?: { backoffLimit?: number; ttlSecondsAfterFinished?: number };
  networkPolicy?: { enabled?: boolean; metricsFrom?: k8s.V1NetworkPolicyPeer[] };
  antiAffinity?: 'preferred' | 'required' | 'none';
  resources?: k8s.V1ResourceRequirements;
  nodeSelector?: Record<string, string>;
  tolerations?: k8s.V1Toleration[];
  affinity?: k8s.V1Affinity;
  /** Replaces the default zone/node spread of the signer pods; [] turns it off. */
  topologySpreadConstraints?: k8s.V1TopologySpreadConstraint[];
  podAnnotations?: Record<string, string>;
  priorityClassName?: string;
  serviceMonitor?: { enabled?: boolean; interval?: string; labels?: Record<string, string> };
  /** Failover safety: where the signers keep their external high-water marks (default Kubernetes). */
  protection?: { highWaterMarks?: 'Kubernetes' | 'Off' };
  /** HTTPS on the signing port (src/operator/desired/tls.ts). */
  tls?: TlsSpec;
}

/** The conditions, in the one order status lists them (each depends on the ones before it). */
export const CONDITION_ORDER = ['DatabaseClaimed', 'Migrated', 'Available', 'Ready'] as const;
/** Failover-safety conditions read from the signers' /readyz, listed after the ordered ones (block() leaves them). */
export const SAFETY_CONDITIONS = ['SynchronousReplication', 'HistoryIntact'] as const;
export type ConditionType = (typeof CONDITION_ORDER)[number] | (typeof SAFETY_CONDITIONS)[number];
export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** Every reason a condition can carry (CamelCase, metav1.Condition). */
export type ConditionReason =
  | 'Claimed'
  | 'SharedWithSameRollup'
  | 'DatabaseInUse'
  | 'SecretNotFound'
  | 'SecretKeyNotFound'
  | 'SecretEmpty'
  | 'InvalidDatabaseURI'
  | 'IdentityPending'
  | 'IdentityUnknown'
  | 'Migrating'
  | 'Migrated'
  | 'MigrationFailed'
  | 'DeploymentAvailable'
  | 'DeploymentUnavailable'
  | 'RollingOut'
  | 'SignerCrashLooping'
  | 'ImagePullFailed'
  | 'PodConfigError'
  | 'PodsUnschedulable'
  | 'RolloutStalled'
  | 'ClusterScopeRequired'
  | 'Ready'
  | 'Synchronous'
  | 'NotSynchronous'
  | 'NotReported'
  | 'SignersUnreachable'
  | 'NoSigners'
  | 'HistoryIntact'
  | 'DatabaseRegressed'
  | 'HighWaterMarksOff';

export interface Condition {
  type: ConditionType | string;
  status: ConditionStatus;
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface ValidatorHASignerStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  /** `<system_identifier>/<database oid>` as the migration Job read it from the server (the ownership key). */
  databaseIdentity?: string;
  /** The database as reported by the server, and the address the URI spells (no credentials). */
  database?: { address?: string; systemIdentifier?: string; name?: string; oid?: string };
  schemaVersion?: string;
  migrationJob?: string;
  replicas?: number;
  readyReplicas?: number;
  selector?: string;
  endpoint?: string;
  /** Per spec.clients.aztecNodes entry: its Secret and the env variables for its pods. */
  aztecNodes?: { name: string; secretName: string; env: k8s.V1EnvVar[] }[];
}

export interface ValidatorHASignerResource {
  apiVersion?: string;
  kind?: string;
  metadata: k8s.V1ObjectMeta & { name: string; namespace: string; uid: string };
  spec: ValidatorHASignerSpec;
  status?: ValidatorHASignerStatus;
}

/** Settings of the operator that the builders need (not part of the resource). */
export interface BuildContext {
  /** Image for signer pods and migration Jobs when the resource names none. */
  defaultImage: string;
  /** The operator's namespace: its pods may reach the signers' metrics port (NetworkPolicy) to read /readyz. */
  operatorNamespace?: string;
}

/** The contract's paths inside a signer pod and its port (src/contract.ts, docs/runtime-contract.md). */
export { POD_PATHS, SIGNER_PORT } from '../contract.js';
