/**
 * The thin API layer: every call the operator makes to the Kubernetes API server, and nothing else. Errors are
 * client-node ApiExceptions; `statusOf` reads their code and the v1.Status reason.
 */
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { FIELD_MANAGER } from './desired/names.js';
import { GROUP, PLURAL, VERSION, type ValidatorHASignerResource, type ValidatorHASignerStatus } from './types.js';

export interface ApiStatus {
  code: number;
  reason: string;
  message: string;
}

export function statusOf(err: unknown): ApiStatus | undefined {
  const e = err as { code?: unknown; body?: unknown };
  if (typeof e?.code !== 'number') return undefined;
  let reason = '';
  let message: string;
  try {
    const body =
      typeof e.body === 'string'
        ? (JSON.parse(e.body) as { reason?: string; message?: string })
        : (e.body as { reason?: string; message?: string });
    reason = body?.reason ?? '';
    message = body?.message ?? '';
  } catch {
    message = String(e.body ?? '');
  }
  return { code: e.code, reason, message };
}

export const isNotFound = (err: unknown) => statusOf(err)?.code === 404;
export const isConflict = (err: unknown) => statusOf(err)?.code === 409;
export const isAlreadyExists = (err: unknown) => statusOf(err)?.code === 409 && statusOf(err)?.reason === 'AlreadyExists';

/** A short description of an API error for conditions and logs. */
export function describeError(err: unknown): string {
  const s = statusOf(err);
  if (s) return `${s.code} ${s.reason}${s.message ? `: ${s.message}` : ''}`;
  return (err as Error)?.message ?? String(err);
}

async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export interface JobPodTermination {
  exitCode: number;
  /** The termination message, or `exit code N (reason)` when there is none. */
  message: string;
}

export class Kube {
  readonly core: k8s.CoreV1Api;
  readonly apps: k8s.AppsV1Api;
  readonly batch: k8s.BatchV1Api;
  readonly custom: k8s.CustomObjectsApi;
  readonly objects: k8s.KubernetesObjectApi;
  readonly events: k8s.EventsV1Api;
  readonly coordination: k8s.CoordinationV1Api;
  readonly rbac: k8s.RbacAuthorizationV1Api;
  private readonly apis: k8s.ApisApi;
  private groupsCache?: { at: number; groups: Set<string> };

  constructor(
    readonly kc: k8s.KubeConfig,
    readonly fieldManager = FIELD_MANAGER,
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.apps = kc.makeApiClient(k8s.AppsV1Api);
    this.batch = kc.makeApiClient(k8s.BatchV1Api);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    this.events = kc.makeApiClient(k8s.EventsV1Api);
    this.coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    this.rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    this.apis = kc.makeApiClient(k8s.ApisApi);
  }

  /** Server-side apply with the operator's field manager, forcing ownership of the fields it sets. */
  async apply<T extends k8s.KubernetesObject>(obj: T): Promise<T> {
    return await this.objects.patch(obj, undefined, undefined, this.fieldManager, true, k8s.PatchStrategy.ServerSideApply);
  }

  async deleteObject(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<boolean> {
    try {
      await this.objects.delete(
        { apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) } },
        undefined,
        undefined,
        undefined,
        undefined,
        'Background',
      );
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  readSecret(namespace: string, name: string): Promise<k8s.V1Secret | undefined> {
    return orUndefined(this.core.readNamespacedSecret({ namespace, name }));
  }

  readJob(namespace: string, name: string): Promise<k8s.V1Job | undefined> {
    return orUndefined(this.batch.readNamespacedJob({ namespace, name }));
  }

  readDeployment(namespace: string, name: string): Promise<k8s.V1Deployment | undefined> {
    return orUndefined(this.apps.readNamespacedDeployment({ namespace, name }));
  }

  async readValidatorHASigner(namespace: string, name: string): Promise<ValidatorHASignerResource | undefined> {
    return (await orUndefined(
      this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name }),
    )) as ValidatorHASignerResource | undefined;
  }

  async listPods(namespace: string, labelSelector: string): Promise<k8s.V1Pod[]> {
    return (await this.core.listNamespacedPod({ namespace, labelSelector })).items;
  }

  /** Terminated containers of a Job's pods, newest first (their termination messages carry migrate's report). */
  async jobPodTerminations(namespace: string, jobName: string): Promise<JobPodTermination[]> {
    const pods = await this.core.listNamespacedPod({ namespace, labelSelector: `job-name=${jobName}` });
    return pods.items
      .flatMap((p) => (p.status?.containerStatuses ?? []).map((c) => c.state?.terminated ?? c.lastState?.terminated))
      .filter((t): t is k8s.V1ContainerStateTerminated => !!t)
      .sort((a, b) => new Date(b.finishedAt ?? 0).getTime() - new Date(a.finishedAt ?? 0).getTime())
      .map((t) => ({ exitCode: t.exitCode, message: t.message?.trim() || `exit code ${t.exitCode}${t.reason ? ` (${t.reason})` : ''}` }));
  }

  /** Sets metadata.finalizers (merge patch at the object's resourceVersion: a concurrent change fails with 409). */
  async patchFinalizers(vhs: ValidatorHASignerResource, finalizers: string[]): Promise<void> {
    await this.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace: vhs.metadata.namespace,
        name: vhs.metadata.name,
        body: { metadata: { finalizers, resourceVersion: vhs.metadata.resourceVersion } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  }

  /** Writes the status subresource (JSON merge patch: the operator owns the whole status). */
  async patchStatus(vhs: ValidatorHASignerResource, status: ValidatorHASignerStatus): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, plural: PLURAL, namespace: vhs.metadata.namespace, name: vhs.metadata.name, body: { status } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  }

  async createEvent(
    vhs: ValidatorHASignerResource,
    type: 'Normal' | 'Warning',
    reason: string,
    action: string,
    note: string,
    instance: string,
  ): Promise<void> {
    await this.events.createNamespacedEvent({
      namespace: vhs.metadata.namespace,
      body: {
        // client-go style name: <object>.<hex time>; generateName would need a trailing alphanumeric.
        metadata: {
          name: `${vhs.metadata.name}.${Date.now().toString(16)}${randomBytes(3).toString('hex')}`,
          namespace: vhs.metadata.namespace,
        },
        eventTime: new k8s.V1MicroTime(),
        reportingController: `${GROUP}/operator`,
        reportingInstance: instance.slice(0, 128),
        action,
        reason,
        type,
        note: note.slice(0, 1024),
        regarding: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'ValidatorHASigner',
          name: vhs.metadata.name,
          namespace: vhs.metadata.namespace,
          uid: vhs.metadata.uid,
          ...(vhs.metadata.resourceVersion ? { resourceVersion: vhs.metadata.resourceVersion } : {}),
        },
      },
    });
  }

  // ---- database ownership records (ConfigMaps in the operator's namespace)

  readConfigMap(namespace: string, name: string): Promise<k8s.V1ConfigMap | undefined> {
    return orUndefined(this.core.readNamespacedConfigMap({ namespace, name }));
  }

  /** Creates the ConfigMap; false when it already exists (someone else got there first). */
  async createConfigMapIfAbsent(cm: k8s.V1ConfigMap): Promise<boolean> {
    try {
      await this.core.createNamespacedConfigMap({ namespace: cm.metadata!.namespace!, body: cm });
      return true;
    } catch (err) {
      if (isAlreadyExists(err)) return false;
      throw err;
    }
  }

  /** Replaces the ConfigMap if it is still at `resourceVersion`; false on a lost race (409). */
  async replaceConfigMapAt(cm: k8s.V1ConfigMap, resourceVersion: string): Promise<boolean> {
    try {
      await this.core.replaceNamespacedConfigMap({
        namespace: cm.metadata!.namespace!,
        name: cm.metadata!.name!,
        body: { ...cm, metadata: { ...cm.metadata, resourceVersion } },
      });
      return true;
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) return false;
      throw err;
    }
  }

  /** Deletes the ConfigMap if it still has `uid` (precondition); false when gone or changed. */
  async deleteConfigMapIf(namespace: string, name: string, uid: string, resourceVersion?: string): Promise<boolean> {
    try {
      await this.core.deleteNamespacedConfigMap({
        namespace,
        name,
        body: { preconditions: { uid, ...(resourceVersion ? { resourceVersion } : {}) } },
      });
      return true;
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) return false;
      throw err;
    }
  }

  async listConfigMaps(namespace: string, labelSelector: string): Promise<k8s.V1ConfigMap[]> {
    return (await this.core.listNamespacedConfigMap({ namespace, labelSelector })).items;
  }

  // ---- cluster-scoped TokenReview bindings

  /**
   * Absent counts as deleted; so does 403: an operator not allowed to delete ClusterRoleBindings was not allowed to
   * create one either, so there is none of its own to remove (a namespaced install must not fail every reconcile).
   */
  async deleteClusterRoleBinding(name: string): Promise<void> {
    try {
      await orUndefined(this.rbac.deleteClusterRoleBinding({ name }));
    } catch (err) {
      if (statusOf(err)?.code !== 403) throw err;
    }
  }

  /** Whether an API group/version is served (discovery, cached for a minute). */
  async servesGroupVersion(groupVersion: string): Promise<boolean> {
    if (!this.groupsCache || Date.now() - this.groupsCache.at > 60_000) {
      const list = await this.apis.getAPIVersions();
      const groups = new Set<string>();
      for (const g of list.groups) for (const v of g.versions) groups.add(v.groupVersion);
      this.groupsCache = { at: Date.now(), groups };
    }
    return this.groupsCache.groups.has(groupVersion);
  }
}
