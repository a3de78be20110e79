/** The pure builders: resource → desired objects, without an API server. */
import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  buildClientsConfigMap,
  buildDeployment,
  buildMigrationJob,
  buildNetworkPolicy,
  buildPodDisruptionBudget,
  buildService,
  buildServiceMonitor,
  buildTokenReviewBinding,
  desiredWorkload,
  jobOutcome,
  migrationJobName,
  names,
  rolloutState,
  secretsChecksum,
  selectorLabels,
  signerEnv,
} from '../../../src/operator/desired/index.js';
import { ADDR, CTX, vhs } from './fixtures.js';

const envMap = (env: { name: string; value?: string; valueFrom?: unknown }[] | undefined) =>
  Object.fromEntries((env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

describe('migration Job', () => {
  it('runs migrate up with the URL from the Secret only, owned, restricted', () => {
    const job = buildMigrationJob(vhs(), CTX, 'db:5432/x');
    expect(job.metadata!.name).toMatch(/^sig-migrate-[0-9a-f]{10}$/);
    expect(job.metadata!.ownerReferences).toEqual([
      {
        apiVersion: 'ha-signer.dev/v1alpha1',
        kind: 'ValidatorHASigner',
        name: 'sig',
        uid: 'uid-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(job.spec).toMatchObject({ backoffLimit: 3, ttlSecondsAfterFinished: 3600 });
    const pod = job.spec!.template.spec!;
    expect(pod.restartPolicy).toBe('Never');
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    const c = pod.containers[0]!;
    expect(c.image).toBe(CTX.defaultImage);
    expect(c.args).toEqual(['migrate', 'up', '--rollup-address', ADDR.toLowerCase()]);
    expect(c.env).toEqual([{ name: 'VALIDATOR_HA_DATABASE_URL', valueFrom: { secretKeyRef: { name: 'db', key: 'uri' } } }]);
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(c.terminationMessagePolicy).toBe('FallbackToLogsOnError');
  });

  it('is named from a hash of image, rollup and database (not credentials)', () => {
    const a = migrationJobName(vhs(), CTX, 'db:5432/x');
    expect(migrationJobName(vhs(), CTX, 'db:5432/x')).toBe(a);
    expect(migrationJobName(vhs({ image: 'other:2' }), CTX, 'db:5432/x')).not.toBe(a);
    expect(migrationJobName(vhs(), CTX, 'db:5432/y')).not.toBe(a);
    expect(migrationJobName(vhs({ replicas: 5 }), CTX, 'db:5432/x')).toBe(a);
    const long = vhs({}, { name: 'a'.repeat(52) });
    expect(migrationJobName(long, CTX, 'db:5432/x').length).toBeLessThanOrEqual(63);
  });

  it('honours spec.migration', () => {
    const job = buildMigrationJob(vhs({ migration: { backoffLimit: 0, ttlSecondsAfterFinished: 60 } }), CTX, 'd');
    expect(job.spec).toMatchObject({ backoffLimit: 0, ttlSecondsAfterFinished: 60 });
  });

  it('reads outcomes from Job conditions', () => {
    expect(jobOutcome({ status: {} })).toEqual({ state: 'running' });
    expect(jobOutcome({ status: { conditions: [{ type: 'Complete', status: 'True' }] } })).toEqual({ state: 'succeeded' });
    const failed = jobOutcome(
      {
        status: {
          conditions: [
            { type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' },
          ],
        },
      },
      'database is bound to rollup 0xbb',
    );
    expect(failed).toEqual({
      state: 'failed',
      reason: 'BackoffLimitExceeded',
      message: 'BackoffLimitExceeded: Job has reached the specified backoff limit; last error: database is bound to rollup 0xbb',
    });
  });
});

describe('Deployment', () => {
  const d = buildDeployment(vhs(), CTX, { secretsChecksum: 'abc' });
  const pod = d.spec!.template.spec!;
  const c = pod.containers[0]!;

  it('selects immutable labels and carries the checksum annotation', () => {
    expect(d.spec!.selector.matchLabels).toEqual(selectorLabels(vhs()));
    expect(d.spec!.template.metadata!.labels).toMatchObject(selectorLabels(vhs()));
    expect(d.spec!.template.metadata!.annotations!['ha-signer.dev/secrets-checksum']).toBe('abc');
    expect(d.spec!.replicas).toBe(2);
    expect(d.metadata!.ownerReferences![0]!.uid).toBe('uid-1');
  });

  it('has the contract env: node id from the pod name, database URL by secretKeyRef, rollup, auth files', () => {
    const env = envMap(c.env);
    expect(env.VALIDATOR_HA_NODE_ID).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    expect(env.VALIDATOR_HA_DATABASE_URL).toEqual({ secretKeyRef: { name: 'db', key: 'uri' } });
    expect(env.VALIDATOR_HA_ROLLUP_ADDRESS).toBe(ADDR.toLowerCase());
    expect(env.HA_SIGNER_KEYS_DIR).toBe('/var/run/ha-signer/keys');
    expect(env.HA_SIGNER_AUTH_TOKENS_FILE).toBe('/var/run/ha-signer/auth/tokens.json');
    expect(env.HA_SIGNER_AUTH_DISABLED).toBeUndefined();
    expect(env.HA_SIGNER_PORT).toBe('8080');
  });

  it('probes, restricted security, read-only root with /tmp, keys read-only', () => {
    // Probes on the plain-HTTP metrics port (src/operator/desired/tls.ts), the same with and without TLS.
    expect(c.readinessProbe!.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(c.livenessProbe!.httpGet).toEqual({ path: '/livez', port: 'metrics' });
    expect(c.ports).toEqual([
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { name: 'metrics', containerPort: 8082, protocol: 'TCP' },
    ]);
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.volumeMounts).toContainEqual({ name: 'keys', mountPath: '/var/run/ha-signer/keys', readOnly: true });
    expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    expect(c.volumeMounts).toContainEqual({ name: 'auth', mountPath: '/var/run/ha-signer/auth', readOnly: true });
    expect(pod.volumes).toContainEqual({ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } });
    // The token for the high-water-mark ConfigMap (spec.protection.highWaterMarks defaults to Kubernetes).
    expect(pod.automountServiceAccountToken).toBe(true);
    expect(pod.serviceAccountName).toBe('sig-signer');
  });

  it('spreads pods across zones and nodes without blocking scheduling; the CR can replace or turn off the spread', () => {
    expect(pod.topologySpreadConstraints!.map((c) => [c.topologyKey, c.whenUnsatisfiable, c.maxSkew])).toEqual([
      ['topology.kubernetes.io/zone', 'ScheduleAnyway', 1],
      ['kubernetes.io/hostname', 'ScheduleAnyway', 1],
    ]);
    expect(pod.topologySpreadConstraints![0]!.labelSelector!.matchLabels).toEqual(d.spec!.selector.matchLabels);
    const own: k8s.V1TopologySpreadConstraint[] = [
      { maxSkew: 2, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule' },
    ];
    expect(
      buildDeployment(vhs({ topologySpreadConstraints: own }), CTX, { secretsChecksum: 'x' }).spec!.template.spec!
        .topologySpreadConstraints,
    ).toEqual(own);
    expect(
      buildDeployment(vhs({ topologySpreadConstraints: [] }), CTX, { secretsChecksum: 'x' }).spec!.template.spec!.topologySpreadConstraints,
    ).toBeUndefined();
  });

  it('spreads pods across nodes by default; required/none/explicit affinity', () => {
    expect(pod.affinity!.podAntiAffinity!.preferredDuringSchedulingIgnoredDuringExecution![0]!.podAffinityTerm.topologyKey).toBe(
      'kubernetes.io/hostname',
    );
    const req = buildDeployment(vhs({ antiAffinity: 'required' }), CTX, { secretsChecksum: 'x' }).spec!.template.spec!;
    expect(req.affinity!.podAntiAffinity!.requiredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
    expect(buildDeployment(vhs({ antiAffinity: 'none' }), CTX, { secretsChecksum: 'x' }).spec!.template.spec!.affinity).toBeUndefined();
    const own = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } } };
    expect(buildDeployment(vhs({ affinity: own }), CTX, { secretsChecksum: 'x' }).spec!.template.spec!.affinity).toEqual(own);
  });

  it('maps signing and pool settings to VALIDATOR_HA_* and web3signer/password/json-rpc options', () => {
    const env = envMap(
      signerEnv(
        vhs({
          signing: {
            pollingIntervalMs: 50,
            signingTimeoutMs: 4000,
            maxStuckDutiesAgeMs: 100000,
            oldDutiesMaxAgeHours: 48,
            signingOperationTimeoutMs: 9000,
          },
          pool: { max: 20, min: 2, idleTimeoutMs: 1000, connectionTimeoutMs: 500 },
          keys: { web3signer: { url: 'http://w3s:9000' } },
          jsonRpc: true,
        }),
      ),
    );
    expect(env).toMatchObject({
      VALIDATOR_HA_POLLING_INTERVAL_MS: '50',
      VALIDATOR_HA_SIGNING_TIMEOUT_MS: '4000',
      VALIDATOR_HA_MAX_STUCK_DUTIES_AGE_MS: '100000',
      VALIDATOR_HA_OLD_DUTIES_MAX_AGE_H: '48',
      VALIDATOR_SIGNING_OPERATION_TIMEOUT_MS: '9000',
      VALIDATOR_HA_POOL_MAX: '20',
      VALIDATOR_HA_POOL_MIN: '2',
      VALIDATOR_HA_POOL_IDLE_TIMEOUT_MS: '1000',
      VALIDATOR_HA_POOL_CONNECTION_TIMEOUT_MS: '500',
      HA_SIGNER_WEB3SIGNER_URL: 'http://w3s:9000',
      HA_SIGNER_JSONRPC_ENABLED: 'true',
    });
    expect(env.HA_SIGNER_KEYS_DIR).toBeUndefined();
    const pw = buildDeployment(vhs({ keys: { secretRef: { name: 'ks' }, passwordSecretRef: { name: 'pw', key: 'pass' } } }), CTX, {
      secretsChecksum: 'x',
    });
    expect(envMap(pw.spec!.template.spec!.containers[0]!.env).HA_SIGNER_KEYSTORE_PASSWORD_FILE).toBe(
      '/var/run/ha-signer/keystore-password/password',
    );
    expect(pw.spec!.template.spec!.volumes).toContainEqual({
      name: 'keystore-password',
      secret: { secretName: 'pw', defaultMode: 0o440, items: [{ key: 'pass', path: 'password' }] },
    });
  });

  it('ServiceAccount clients: allow-list ConfigMap, API token, TokenReview binding', () => {
    const v = vhs({
      clients: {
        serviceAccounts: [
          { name: 'validator', validators: ['*'] },
          { namespace: 'other', name: 'v2', validators: [ADDR] },
        ],
      },
    });
    const dep = buildDeployment(v, CTX, { secretsChecksum: 'x' });
    expect(dep.spec!.template.spec!.automountServiceAccountToken).toBe(true);
    expect(envMap(dep.spec!.template.spec!.containers[0]!.env).HA_SIGNER_AUTH_SERVICE_ACCOUNTS_FILE).toBe(
      '/var/run/ha-signer/auth/service-accounts.json',
    );
    const cm = buildClientsConfigMap(v);
    expect(JSON.parse(cm.data!['service-accounts.json']!)).toEqual([
      { namespace: 'val', name: 'validator', validators: ['*'] },
      { namespace: 'other', name: 'v2', validators: [ADDR.toLowerCase()] },
    ]);
    const crb = buildTokenReviewBinding(v);
    expect(crb.roleRef.name).toBe('system:auth-delegator');
    expect(crb.subjects).toEqual([{ kind: 'ServiceAccount', name: 'sig-signer', namespace: 'val' }]);
    expect(crb.metadata!.ownerReferences).toBeUndefined();
    const kinds = desiredWorkload(v, CTX, { secretsChecksum: 'x', serviceMonitorCrd: false }).map((o) => o.kind);
    expect(kinds).toEqual([
      'ServiceAccount',
      'ConfigMap',
      'ConfigMap',
      'Role',
      'RoleBinding',
      'Service',
      'PodDisruptionBudget',
      'NetworkPolicy',
      'Deployment',
    ]);
  });

  it('auth disabled: no auth volume, HA_SIGNER_AUTH_DISABLED', () => {
    const dep = buildDeployment(vhs({ clients: { disableAuthentication: true } }), CTX, { secretsChecksum: 'x' });
    expect(envMap(dep.spec!.template.spec!.containers[0]!.env).HA_SIGNER_AUTH_DISABLED).toBe('true');
    expect(dep.spec!.template.spec!.volumes!.map((v) => v.name)).not.toContain('auth');
  });

  it('Available while enough pods serve (scale, roll); Ready only with every replica updated and ready at the current generation', () => {
    expect(rolloutState(undefined)).toMatchObject({ available: false, complete: false });
    const base = { metadata: { generation: 2 }, spec: { replicas: 2, selector: {}, template: {} } };
    const dep = (status: object, replicas = 2) =>
      ({ ...base, spec: { ...base.spec, replicas }, status: { observedGeneration: 2, ...status } }) as never;
    expect(rolloutState(dep({ readyReplicas: 2, availableReplicas: 2, updatedReplicas: 2, replicas: 2 }))).toMatchObject({
      available: true,
      complete: true,
    });
    expect(
      rolloutState({
        ...base,
        status: { observedGeneration: 1, readyReplicas: 2, availableReplicas: 2, updatedReplicas: 2, replicas: 2 },
      } as never),
    ).toMatchObject({ available: true, complete: false });
    // A Secret roll (maxSurge 1): 3 pods, 1 updated; serving throughout.
    expect(rolloutState(dep({ readyReplicas: 3, availableReplicas: 3, updatedReplicas: 1, replicas: 3 }))).toMatchObject({
      available: true,
      complete: false,
    });
    // Scaling 5 -> 2 (the "5/2 ready"), and 2 -> 3.
    expect(rolloutState(dep({ readyReplicas: 5, availableReplicas: 5, updatedReplicas: 5, replicas: 5 }))).toMatchObject({
      available: true,
      complete: false,
    });
    expect(rolloutState(dep({ readyReplicas: 2, availableReplicas: 2, updatedReplicas: 3, replicas: 3 }, 3))).toMatchObject({
      available: true,
      complete: false,
    });
    // Fewer than all but one: unavailable.
    expect(rolloutState(dep({ readyReplicas: 1, availableReplicas: 1, updatedReplicas: 3, replicas: 3 }, 3)).available).toBe(false);
    expect(rolloutState(dep({ readyReplicas: 0, availableReplicas: 0, updatedReplicas: 1, replicas: 1 }, 1)).available).toBe(false);
  });

  it('names the cause when pods do not serve: crash loop with the last message, image pull, scheduling, stalled rollout', () => {
    const dep = {
      metadata: { generation: 1 },
      spec: { replicas: 2, selector: {}, template: {} },
      status: { observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 0 },
    } as never;
    const pod = (status: object) => ({ metadata: { name: 'p-1' }, status }) as never;
    const crash = rolloutState(dep, [
      pod({
        containerStatuses: [
          {
            name: 'signer',
            ready: false,
            restartCount: 4,
            state: { waiting: { reason: 'CrashLoopBackOff' } },
            lastState: { terminated: { exitCode: 1, message: 'keys: validator-1 is not a private key' } },
          },
        ],
      }),
    ]);
    expect(crash.cause).toEqual({
      reason: 'SignerCrashLooping',
      message: 'pod p-1: container signer restarted 4 times, last exit code 1: keys: validator-1 is not a private key',
    });
    expect(
      rolloutState(dep, [
        pod({
          containerStatuses: [
            { name: 'signer', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'no such image' } } },
          ],
        }),
      ]).cause?.reason,
    ).toBe('ImagePullFailed');
    expect(
      rolloutState(dep, [pod({ conditions: [{ type: 'PodScheduled', status: 'False', message: '0/3 nodes are available' }] })]).cause,
    ).toEqual({ reason: 'PodsUnschedulable', message: 'pod p-1 cannot be scheduled: 0/3 nodes are available' });
    const stalled = {
      ...(dep as object),
      status: {
        observedGeneration: 1,
        conditions: [
          {
            type: 'Progressing',
            status: 'False',
            reason: 'ProgressDeadlineExceeded',
            message: 'ReplicaSet "x" has timed out progressing.',
          },
        ],
      },
    } as never;
    expect(rolloutState(stalled).cause?.reason).toBe('RolloutStalled');
  });
});

describe('Service, PDB, NetworkPolicy, ServiceMonitor', () => {
  it('Service selects the signer pods on port 8080', () => {
    const s = buildService(vhs());
    expect(s.spec).toMatchObject({
      type: 'ClusterIP',
      selector: selectorLabels(vhs()),
      ports: [
        { name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' },
        { name: 'metrics', port: 8082, targetPort: 'metrics', protocol: 'TCP' },
      ],
    });
  });

  it('PDB allows one disruption', () => {
    expect(buildPodDisruptionBudget(vhs()).spec).toMatchObject({ maxUnavailable: 1, selector: { matchLabels: selectorLabels(vhs()) } });
  });

  it('NetworkPolicy admits declared clients and metrics scrapers only', () => {
    const v = vhs({
      clients: {
        serviceAccounts: [
          { name: 'a', validators: ['*'] },
          { namespace: 'x', name: 'b', validators: ['*'], podSelector: { matchLabels: { app: 'validator' } } },
        ],
        tokens: { secretRef: { name: 't' }, from: [{ ipBlock: { cidr: '10.1.0.0/16' } }] },
      },
      networkPolicy: {
        enabled: true,
        metricsFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
      },
    });
    const np = buildNetworkPolicy(v);
    expect(np.spec!.policyTypes).toEqual(['Ingress']);
    expect(np.spec!.ingress).toEqual([
      {
        _from: [
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'val' } } },
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'x' } },
            podSelector: { matchLabels: { app: 'validator' } },
          },
          { ipBlock: { cidr: '10.1.0.0/16' } },
        ],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
      // Scrapers only on the plain-HTTP metrics port, never on the signing port.
      {
        _from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
        ports: [{ protocol: 'TCP', port: 8082 }],
      },
    ]);
    expect(buildNetworkPolicy(vhs({ clients: { disableAuthentication: true } })).spec!.ingress).toEqual([]);
  });

  it('ServiceMonitor only when requested and the CRD is served', () => {
    const v = vhs({ serviceMonitor: { enabled: true, interval: '15s', labels: { release: 'prom' } } });
    expect(buildServiceMonitor(v)).toMatchObject({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: { labels: { release: 'prom' } },
      spec: { endpoints: [{ port: 'metrics', path: '/metrics', interval: '15s' }] },
    });
    expect(desiredWorkload(v, CTX, { secretsChecksum: 'x', serviceMonitorCrd: true }).map((o) => o.kind)).toContain('ServiceMonitor');
    expect(desiredWorkload(v, CTX, { secretsChecksum: 'x', serviceMonitorCrd: false }).map((o) => o.kind)).not.toContain('ServiceMonitor');
    expect(
      desiredWorkload(vhs({ networkPolicy: { enabled: false } }), CTX, { secretsChecksum: 'x', serviceMonitorCrd: true }).map(
        (o) => o.kind,
      ),
    ).not.toContain('NetworkPolicy');
  });
});

describe('secrets checksum', () => {
  const secrets = (db: string, key: string, extra = 'x') =>
    new Map<string, k8s.V1Secret | undefined>([
      ['db', { data: { uri: Buffer.from(db).toString('base64'), other: Buffer.from(extra).toString('base64') } }],
      ['keys', { data: { k1: Buffer.from(key).toString('base64') } }],
      ['tokens', { data: { 'tokens.json': 'W10=' } }],
    ]);
  it('changes with the referenced data only', () => {
    const a = secretsChecksum(vhs(), secrets('postgresql://a', 'k'));
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(secretsChecksum(vhs(), secrets('postgresql://a', 'k'))).toBe(a);
    expect(secretsChecksum(vhs(), secrets('postgresql://b', 'k'))).not.toBe(a);
    expect(secretsChecksum(vhs(), secrets('postgresql://a', 'k2'))).not.toBe(a);
    expect(secretsChecksum(vhs(), secrets('postgresql://a', 'k', 'unrelated key'))).toBe(a);
  });
});

describe('names', () => {
  it('database ownership record names depend on the database identity only', () => {
    expect(names.databaseOwnership('h:5432/db')).toMatch(/^ha-signer-db-[0-9a-f]{16}$/);
    expect(names.databaseOwnership('h:5432/db')).not.toBe(names.databaseOwnership('h:5432/db2'));
  });
});
