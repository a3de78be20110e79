/** The signer Deployment. Pure. */
import type * as k8s from '@kubernetes/client-node';
import { POD_PATHS, SIGNER_PORT, type BuildContext, type ValidatorHASignerResource } from '../types.js';
import { POD_NAME_ENV, PROTECTION_ENV, SAFETY_ENV, SIGNER_ENV } from '../../contract.js';
import { DATABASE_URL_ENV } from './job.js';
import { aztecNodesOf, JSONRPC_CLIENTS_KEY } from './aztec-nodes.js';
import { clientsConfigMapNeeded, serviceAccountAllowList } from './configmap.js';
import {
  ANNOTATION_CLIENTS_CHECKSUM,
  ANNOTATION_SECRETS_CHECKSUM,
  commonLabels,
  hash,
  imageOf,
  names,
  ownedMeta,
  selectorLabels,
} from './names.js';
import { containerSecurityContext, podSecurityContext } from './security.js';
import { highWaterMarksEnabled, highWaterMarksEnv } from './high-water-marks.js';
import { METRICS_PORT_NAME, metricsContainerPort, tlsEnv, tlsVolume } from './tls.js';

export interface DeploymentInputs {
  /** Checksum of the data of every Secret the pods read (see secretsChecksum): a change rolls the pods. */
  secretsChecksum: string;
  /** Checksum of the stock-node clients file (when spec.clients.aztecNodes is set). */
  jsonRpcClientsChecksum?: string;
}

/** Whether the signers call TokenReview (ServiceAccount clients), which needs the cluster-scoped binding. */
export function needsApiToken(vhs: ValidatorHASignerResource): boolean {
  return !vhs.spec.clients?.disableAuthentication && (vhs.spec.clients?.serviceAccounts?.length ?? 0) > 0;
}

/** Whether signer pods mount a ServiceAccount token: for TokenReview, or for the high-water-mark ConfigMap. */
export function mountsApiToken(vhs: ValidatorHASignerResource): boolean {
  return needsApiToken(vhs) || highWaterMarksEnabled(vhs);
}

export function signerEnv(vhs: ValidatorHASignerResource): k8s.V1EnvVar[] {
  const s = vhs.spec;
  const env: k8s.V1EnvVar[] = [
    { name: POD_NAME_ENV, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: PROTECTION_ENV.nodeId, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: DATABASE_URL_ENV, valueFrom: { secretKeyRef: { name: s.database.secretRef.name, key: s.database.secretRef.key ?? 'uri' } } },
    { name: PROTECTION_ENV.rollupAddress, value: s.rollup.address.toLowerCase() },
    { name: PROTECTION_ENV.haSigningEnabled, value: 'true' },
    { name: SIGNER_ENV.port, value: String(SIGNER_PORT) },
  ];
  const num = (name: string, v: number | undefined) => v !== undefined && env.push({ name, value: String(v) });
  num(PROTECTION_ENV.pollingIntervalMs, s.signing?.pollingIntervalMs);
  num(PROTECTION_ENV.signingTimeoutMs, s.signing?.signingTimeoutMs);
  num(PROTECTION_ENV.maxStuckDutiesAgeMs, s.signing?.maxStuckDutiesAgeMs);
  num(PROTECTION_ENV.signingOperationTimeoutMs, s.signing?.signingOperationTimeoutMs);
  num(PROTECTION_ENV.cleanupOldDutiesAfterHours, s.signing?.oldDutiesMaxAgeHours);
  num(PROTECTION_ENV.poolMaxCount, s.pool?.max);
  num(PROTECTION_ENV.poolMinCount, s.pool?.min);
  num(PROTECTION_ENV.poolIdleTimeoutMs, s.pool?.idleTimeoutMs);
  num(PROTECTION_ENV.poolConnectionTimeoutMs, s.pool?.connectionTimeoutMs);
  if (s.database.requireSynchronousReplication) env.push({ name: SAFETY_ENV.requireSynchronousReplication, value: 'true' });
  if (s.keys.web3signer) env.push({ name: SIGNER_ENV.web3SignerUrl, value: s.keys.web3signer.url });
  else env.push({ name: SIGNER_ENV.keysDir, value: POD_PATHS.keysDir });
  if (s.keys.passwordSecretRef) env.push({ name: SIGNER_ENV.keystorePasswordFile, value: POD_PATHS.keystorePasswordFile });
  if (s.clients?.disableAuthentication) env.push({ name: SIGNER_ENV.authDisabled, value: 'true' });
  else {
    if (s.clients?.tokens) env.push({ name: SIGNER_ENV.authTokensFile, value: POD_PATHS.tokensFile });
    if ((s.clients?.serviceAccounts?.length ?? 0) > 0)
      env.push({ name: SIGNER_ENV.authServiceAccountsFile, value: POD_PATHS.serviceAccountsFile });
  }
  const aztecNodes = aztecNodesOf(vhs).length > 0;
  if (aztecNodes) env.push({ name: SIGNER_ENV.jsonRpcClientsFile, value: POD_PATHS.jsonRpcClientsFile });
  if (s.jsonRpc || aztecNodes) env.push({ name: SIGNER_ENV.jsonRpcEnabled, value: 'true' });
  env.push(...highWaterMarksEnv(vhs));
  env.push(...tlsEnv(vhs));
  return env;
}

function volumes(vhs: ValidatorHASignerResource): { volumes: k8s.V1Volume[]; mounts: k8s.V1VolumeMount[] } {
  const s = vhs.spec;
  const vols: k8s.V1Volume[] = [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }];
  const mounts: k8s.V1VolumeMount[] = [{ name: 'tmp', mountPath: POD_PATHS.tmp }];
  if (s.keys.secretRef) {
    vols.push({ name: 'keys', secret: { secretName: s.keys.secretRef.name, defaultMode: 0o440 } });
    mounts.push({ name: 'keys', mountPath: POD_PATHS.keysDir, readOnly: true });
  }
  if (s.keys.passwordSecretRef) {
    const p = s.keys.passwordSecretRef;
    vols.push({
      name: 'keystore-password',
      secret: { secretName: p.name, defaultMode: 0o440, items: [{ key: p.key ?? 'password', path: 'password' }] },
    });
    mounts.push({ name: 'keystore-password', mountPath: POD_PATHS.keystorePasswordDir, readOnly: true });
  }
  if (!s.clients?.disableAuthentication) {
    const sources: k8s.V1VolumeProjection[] = [];
    if (s.clients?.tokens) {
      const t = s.clients.tokens.secretRef;
      sources.push({ secret: { name: t.name, items: [{ key: t.key ?? 'tokens.json', path: 'tokens.json' }] } });
    }
    if ((s.clients?.serviceAccounts?.length ?? 0) > 0) {
      sources.push({
        configMap: { name: names.clientsConfigMap(vhs), items: [{ key: 'service-accounts.json', path: 'service-accounts.json' }] },
      });
    }
    if (aztecNodesOf(vhs).length > 0) {
      sources.push({
        secret: { name: names.jsonRpcClientsSecret(vhs), items: [{ key: JSONRPC_CLIENTS_KEY, path: 'jsonrpc-clients.json' }] },
      });
    }
    if (sources.length > 0) {
      vols.push({ name: 'auth', projected: { sources, defaultMode: 0o440 } });
      mounts.push({ name: 'auth', mountPath: POD_PATHS.authDir, readOnly: true });
    }
  }
  const tls = tlsVolume(vhs);
  if (tls) {
    vols.push(tls.volume);
    mounts.push(tls.mount);
  }
  return { volumes: vols, mounts };
}

function affinity(vhs: ValidatorHASignerResource): k8s.V1Affinity | undefined {
  if (vhs.spec.affinity) return vhs.spec.affinity;
  const mode = vhs.spec.antiAffinity ?? 'preferred';
  if (mode === 'none') return undefined;
  const term: k8s.V1PodAffinityTerm = { labelSelector: { matchLabels: selectorLabels(vhs) }, topologyKey: 'kubernetes.io/hostname' };
  return mode === 'required'
    ? { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term] } }
    : { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: term }] } };
}

/**
 * Signer pods spread across zones and nodes so one zone outage leaves a replica signing. ScheduleAnyway: a cluster
 * with one zone (or too few nodes) still schedules every replica.
 */
function topologySpread(vhs: ValidatorHASignerResource): k8s.V1TopologySpreadConstraint[] {
  if (vhs.spec.topologySpreadConstraints) return vhs.spec.topologySpreadConstraints;
  return ['topology.kubernetes.io/zone', 'kubernetes.io/hostname'].map((topologyKey) => ({
    maxSkew: 1,
    topologyKey,
    whenUnsatisfiable: 'ScheduleAnyway',
    labelSelector: { matchLabels: selectorLabels(vhs) },
  }));
}

export function buildDeployment(vhs: ValidatorHASignerResource, ctx: BuildContext, inputs: DeploymentInputs): k8s.V1Deployment {
  const s = vhs.spec;
  const { volumes: vols, mounts } = volumes(vhs);
  const aff = affinity(vhs);
  const spread = topologySpread(vhs);
  const podLabels = commonLabels(vhs, 'signer');
  const container: k8s.V1Container = {
    name: 'signer',
    image: imageOf(vhs, ctx.defaultImage),
    ...(s.imagePullPolicy ? { imagePullPolicy: s.imagePullPolicy } : {}),
    args: ['serve'],
    ports: [{ name: 'http', containerPort: SIGNER_PORT, protocol: 'TCP' }, metricsContainerPort],
    env: signerEnv(vhs),
    // Probes on the plain-HTTP metrics port: the same with and without TLS on the signing port.
    readinessProbe: { httpGet: { path: '/readyz', port: METRICS_PORT_NAME }, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 3 },
    livenessProbe: {
      httpGet: { path: '/livez', port: METRICS_PORT_NAME },
      initialDelaySeconds: 10,
      periodSeconds: 10,
      timeoutSeconds: 3,
      failureThreshold: 3,
    },
    resources: s.resources ?? { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
    securityContext: containerSecurityContext(),
    terminationMessagePolicy: 'FallbackToLogsOnError',
    volumeMounts: mounts,
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: ownedMeta(vhs, names.deployment(vhs), 'signer'),
    spec: {
      replicas: s.replicas ?? 2,
      selector: { matchLabels: selectorLabels(vhs) },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      revisionHistoryLimit: 5,
      template: {
        metadata: {
          labels: podLabels,
          annotations: {
            ...(s.podAnnotations ?? {}),
            [ANNOTATION_SECRETS_CHECKSUM]: inputs.secretsChecksum,
            // The client list: a change rolls the pods, so Ready (every pod updated) means every pod serves the new
            // list, and a removed client is revoked on every replica.
            ...(clientsConfigMapNeeded(vhs) || inputs.jsonRpcClientsChecksum
              ? {
                  [ANNOTATION_CLIENTS_CHECKSUM]: hash(
                    {
                      serviceAccounts: clientsConfigMapNeeded(vhs) ? serviceAccountAllowList(vhs) : [],
                      aztecNodes: inputs.jsonRpcClientsChecksum ?? '',
                    },
                    64,
                  ),
                }
              : {}),
          },
        },
        spec: {
          serviceAccountName: names.serviceAccount(vhs),
          automountServiceAccountToken: mountsApiToken(vhs),
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 30,
          securityContext: podSecurityContext(),
          containers: [container],
          volumes: vols,
          ...(aff ? { affinity: aff } : {}),
          ...(spread.length > 0 ? { topologySpreadConstraints: spread } : {}),
          ...(s.imagePullSecrets ? { imagePullSecrets: s.imagePullSecrets } : {}),
          ...(s.nodeSelector ? { nodeSelector: s.nodeSelector } : {}),
          ...(s.tolerations ? { tolerations: s.tolerations } : {}),
          ...(s.priorityClassName ? { priorityClassName: s.priorityClassName } : {}),
        },
      },
    },
  };
}
