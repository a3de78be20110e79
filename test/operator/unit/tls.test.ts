/** spec.tls and the metrics port in the pure builders: Deployment env/volume/probes, Service, endpoint, cert-manager Certificate. */
import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { POD_PATHS, SIGNER_ENV } from '../../../src/contract.js';
import {
  buildCertificate,
  buildDeployment,
  buildService,
  desiredWorkload,
  endpointUrl,
  signerEnv,
  tlsSecretName,
  type TlsSpec,
} from '../../../src/operator/desired/index.js';
import type { ValidatorHASignerSpec } from '../../../src/operator/types.js';
import { serveConfigFromEnv } from '../../../src/signer/config.js';
import { referencedSecrets, secretsChecksum } from '../../../src/operator/desired/index.js';
import { readInputs } from '../../../src/operator/reconcile/inputs.js';
import { StatusRecorder } from '../../../src/operator/reconcile/status.js';
import { FakeSecrets } from './fake-api.js';
import { CTX, vhs } from './fixtures.js';

const withTls = (tls: TlsSpec) => vhs({ tls } as Partial<ValidatorHASignerSpec>);
const envOf = (resource: ReturnType<typeof vhs>): Record<string, string> =>
  Object.fromEntries(signerEnv(resource).flatMap((e) => (e.value !== undefined ? [[e.name, e.value]] : [])));

describe('spec.tls.secretName', () => {
  const resource = withTls({ secretName: 'signer-tls' });
  const pod = buildDeployment(resource, CTX, { secretsChecksum: 'x' }).spec!.template.spec!;
  const container = pod.containers[0]!;

  it('mounts tls.crt and tls.key of the Secret as a volume (no subPath) and points serve at them', () => {
    expect(pod.volumes).toContainEqual({
      name: 'tls',
      secret: {
        secretName: 'signer-tls',
        defaultMode: 0o440,
        items: [
          { key: 'tls.crt', path: 'tls.crt' },
          { key: 'tls.key', path: 'tls.key' },
        ],
      },
    });
    expect(container.volumeMounts).toContainEqual({ name: 'tls', mountPath: POD_PATHS.tlsDir, readOnly: true });
    expect(container.volumeMounts!.every((m) => m.subPath === undefined)).toBe(true);
    const env = envOf(resource);
    expect(env[SIGNER_ENV.tlsCertFile]).toBe(POD_PATHS.tlsCertFile);
    expect(env[SIGNER_ENV.tlsKeyFile]).toBe(POD_PATHS.tlsKeyFile);
    expect(env[SIGNER_ENV.metricsPort]).toBe('8082');
  });

  it('env accepted by serve (with the database URL a secretKeyRef would give)', () => {
    const config = serveConfigFromEnv({
      ...envOf(resource),
      VALIDATOR_HA_DATABASE_URL: 'postgresql://u:p@db:5432/d',
      VALIDATOR_HA_NODE_ID: 'pod-1',
    });
    expect(config.tls).toEqual({ certFile: POD_PATHS.tlsCertFile, keyFile: POD_PATHS.tlsKeyFile });
    expect(config.metricsPort).toBe(8082);
  });

  it('probes stay plain HTTP on the metrics port; the Service exposes both ports; the endpoint is https', () => {
    expect(container.readinessProbe!.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(container.readinessProbe!.httpGet!.scheme).toBeUndefined();
    expect(container.ports).toContainEqual({ name: 'metrics', containerPort: 8082, protocol: 'TCP' });
    expect(buildService(resource).spec!.ports!.map((p) => p.name)).toEqual(['http', 'metrics']);
    expect(endpointUrl(resource)).toBe('https://sig.val.svc:8080');
    expect(endpointUrl(vhs())).toBe('http://sig.val.svc:8080');
  });

  it('no Certificate is made for a user-provided Secret, and no TLS without spec.tls', () => {
    expect(
      desiredWorkload(resource, CTX, { secretsChecksum: 'x', serviceMonitorCrd: false, certManagerCrd: true }).map((o) => o.kind),
    ).not.toContain('Certificate');
    const plain = envOf(vhs());
    expect(plain[SIGNER_ENV.tlsCertFile]).toBeUndefined();
    expect(buildDeployment(vhs(), CTX, { secretsChecksum: 'x' }).spec!.template.spec!.volumes!.some((v) => v.name === 'tls')).toBe(false);
  });
});

describe('spec.tls.certManager', () => {
  const resource = withTls({
    certManager: { issuerRef: { name: 'ca-issuer', kind: 'ClusterIssuer' }, dnsNames: ['signer.example.org', 'sig'] },
  });

  it('builds an owned Certificate for the Service names, writing the Secret the pods mount', () => {
    const cert = buildCertificate(resource);
    expect(cert).toMatchObject({
      apiVersion: 'cert-manager.io/v1',
      kind: 'Certificate',
      metadata: {
        name: 'sig-tls',
        namespace: 'val',
        ownerReferences: [{ kind: 'ValidatorHASigner', name: 'sig', uid: 'uid-1', controller: true }],
      },
      spec: {
        secretName: 'sig-tls',
        commonName: 'sig.val.svc',
        dnsNames: ['sig', 'sig.val', 'sig.val.svc', 'sig.val.svc.cluster.local', 'signer.example.org'],
        usages: ['server auth', 'digital signature'],
        privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
        issuerRef: { name: 'ca-issuer', kind: 'ClusterIssuer', group: 'cert-manager.io' },
      },
    });
    expect(tlsSecretName(resource)).toBe('sig-tls');
    const pod = buildDeployment(resource, CTX, { secretsChecksum: 'x' }).spec!.template.spec!;
    expect(pod.volumes!.find((v) => v.name === 'tls')!.secret!.secretName).toBe('sig-tls');
  });

  it('a chosen secretName is used by both; defaults for kind and group', () => {
    const named = withTls({ secretName: 'custom', certManager: { issuerRef: { name: 'i' }, duration: '720h', renewBefore: '240h' } });
    expect(buildCertificate(named).spec).toMatchObject({
      secretName: 'custom',
      issuerRef: { name: 'i', kind: 'Issuer', group: 'cert-manager.io' },
      duration: '720h',
      renewBefore: '240h',
    });
  });

  it('the Certificate is applied only when cert-manager.io/v1 is served, before the Deployment', () => {
    const kinds = (crd: boolean) =>
      desiredWorkload(resource, CTX, { secretsChecksum: 'x', serviceMonitorCrd: false, certManagerCrd: crd }).map((o) => o.kind);
    expect(kinds(false)).not.toContain('Certificate');
    expect(kinds(true).indexOf('Certificate')).toBeGreaterThanOrEqual(0);
    expect(kinds(true).indexOf('Certificate')).toBeLessThan(kinds(true).indexOf('Deployment'));
  });
});

describe('the TLS Secret as an input', () => {
  const secrets = (tls?: Record<string, string>) => {
    const s = new FakeSecrets();
    s.put('val', 'db', { uri: 'postgresql://u:pw@db.example:5432/signer' });
    s.put('val', 'keys', { k: '0x01' });
    s.put('val', 'tokens', { 'tokens.json': '[]' });
    if (tls) s.put('val', 'signer-tls', tls);
    return s;
  };
  const inputs = (s: FakeSecrets, v = withTls({ secretName: 'signer-tls' })) => {
    const rec = new StatusRecorder(v);
    return { rec, result: readInputs(v, (ns, n) => s.readSecret(ns, n), rec) };
  };

  it("a missing user Secret or key stops the reconcile naming spec.tls.secretName; cert-manager's own Secret is not required up front", async () => {
    const missing = inputs(secrets());
    await expect(missing.result).rejects.toThrow('Secret val/signer-tls (spec.tls.secretName) not found');
    expect(missing.rec.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'SecretNotFound' });
    await expect(inputs(secrets({ 'tls.crt': 'x' })).result).rejects.toThrow(
      'Secret val/signer-tls (spec.tls.secretName) has no key tls.key',
    );
    await expect(inputs(secrets({ 'tls.crt': 'x', 'tls.key': 'y' })).result).resolves.toMatchObject({
      databaseAddress: 'db.example:5432/signer',
    });
    const issued = withTls({ certManager: { issuerRef: { name: 'ca' } } });
    expect(referencedSecrets(issued).map((u) => u.name)).not.toContain('sig-tls');
    await expect(inputs(secrets(), issued).result).resolves.toBeDefined();
  });

  it('is watched but never rolls the pods: a renewed certificate does not change the secrets checksum', () => {
    const resource = withTls({ secretName: 'signer-tls' });
    expect(referencedSecrets(resource)).toContainEqual({
      name: 'signer-tls',
      keys: ['tls.crt', 'tls.key'],
      field: 'spec.tls.secretName',
      rolls: false,
    });
    type Secrets = Map<string, k8s.V1Secret | undefined>;
    const secret = (data: Record<string, string>): k8s.V1Secret => ({ data });
    const base: [string, k8s.V1Secret][] = [
      ['db', secret({ uri: 'dXJp' })],
      ['keys', secret({ k: 'MDE=' })],
      ['tokens', secret({ 'tokens.json': 'W10=' })],
    ];
    const withTlsData = (value: string): Secrets => new Map([...base, ['signer-tls', secret({ 'tls.crt': value, 'tls.key': value })]]);
    const before = secretsChecksum(resource, withTlsData('b2xk'));
    expect(secretsChecksum(resource, withTlsData('bmV3'))).toBe(before);
    // ...while a change of a Secret that does roll the pods still changes it.
    const keysChanged: Secrets = new Map([
      ...base,
      ['keys', secret({ k: 'MDI=' })],
      ['signer-tls', secret({ 'tls.crt': 'b2xk', 'tls.key': 'b2xk' })],
    ]);
    expect(secretsChecksum(resource, keysChanged)).not.toBe(before);
  });
});
