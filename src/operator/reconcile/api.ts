/**
 * The small slices of the API server each reconcile phase uses. `Kube` implements them all; unit tests give each
 * phase a fake of only its slice.
 */
import type * as k8s from '@kubernetes/client-node';
import type { ValidatorHASignerResource, ValidatorHASignerStatus } from '../types.js';

/** Read-only views of the informer caches. */
export interface ReconcilerCaches {
  vhs: { get(namespace: string, name: string): ValidatorHASignerResource | undefined; list(): ValidatorHASignerResource[] };
  jobs: { get(namespace: string, name: string): k8s.V1Job | undefined };
  deployments: { get(namespace: string, name: string): k8s.V1Deployment | undefined };
  secrets: { get(namespace: string, name: string): k8s.V1Secret | undefined };
}

export interface SecretsApi {
  readSecret(namespace: string, name: string): Promise<k8s.V1Secret | undefined>;
}

export interface OwnershipApi {
  readConfigMap(namespace: string, name: string): Promise<k8s.V1ConfigMap | undefined>;
  createConfigMapIfAbsent(cm: k8s.V1ConfigMap): Promise<boolean>;
  replaceConfigMapAt(cm: k8s.V1ConfigMap, resourceVersion: string): Promise<boolean>;
  deleteConfigMapIf(namespace: string, name: string, uid: string, resourceVersion?: string): Promise<boolean>;
  listConfigMaps(namespace: string, labelSelector: string): Promise<k8s.V1ConfigMap[]>;
  readValidatorHASigner(namespace: string, name: string): Promise<ValidatorHASignerResource | undefined>;
  readDeployment(namespace: string, name: string): Promise<k8s.V1Deployment | undefined>;
  deleteObject(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<boolean>;
}

export interface MigrationApi {
  readJob(namespace: string, name: string): Promise<k8s.V1Job | undefined>;
  apply<T extends k8s.KubernetesObject>(obj: T): Promise<T>;
  /** Terminated containers of the Job's pods, newest first. */
  jobPodTerminations(namespace: string, jobName: string): Promise<{ exitCode: number; message: string }[]>;
}

export interface WorkloadApi {
  apply<T extends k8s.KubernetesObject>(obj: T): Promise<T>;
  deleteObject(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<boolean>;
  deleteClusterRoleBinding(name: string): Promise<void>;
  servesGroupVersion(groupVersion: string): Promise<boolean>;
}

export interface FinalizerApi {
  patchFinalizers(vhs: ValidatorHASignerResource, finalizers: string[]): Promise<void>;
}

export interface PodsApi {
  listPods(namespace: string, labelSelector: string): Promise<k8s.V1Pod[]>;
}

export interface StatusApi {
  patchStatus(vhs: ValidatorHASignerResource, status: ValidatorHASignerStatus): Promise<void>;
  createEvent(
    vhs: ValidatorHASignerResource,
    type: 'Normal' | 'Warning',
    reason: string,
    action: string,
    note: string,
    instance: string,
  ): Promise<void>;
}

export type ReconcileApi = SecretsApi & OwnershipApi & MigrationApi & WorkloadApi & PodsApi & StatusApi & FinalizerApi;

export type Log = (msg: string, fields?: Record<string, unknown>) => void;
