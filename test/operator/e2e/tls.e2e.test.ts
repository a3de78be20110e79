/**
 * spec.tls on the real control plane and the local kubelet: the API server refuses malformed spec.tls with the CRD's
 * messages; a resource with tls.secretName becomes Ready with its probes on the plain-HTTP metrics port, its
 * signing port speaks HTTPS with the Secret's certificate (verified for the Service's DNS name against the CA), and
 * plain HTTP on the signing port gets no answer.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { callService, clients, createTestNamespace, describeK8s, serviceEndpoints, type TestNamespace } from '../../harness/k8s.js';
import { createTestDatabase } from '../../support/postgres.js';
import { issueServerCert, makeCa, type TestCa } from '../../signer/tls-certs.js';
import { startOperatorProcess, type OperatorProcess } from './operator-process.js';
import { createSecret, createVhs, rejection, ROLLUP_A, validatorKey, vhsBody, waitForCondition } from './support.js';

/** GET over HTTPS to a pod IP, verifying the certificate for `servername` (what a client resolving the Service name checks). */
function httpsGet(ip: string, port: number, servername: string, ca: string, pathname: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: ip, port, path: pathname, servername, ca, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describeK8s('operator e2e: TLS for the signing API', () => {
  let ns: TestNamespace;
  let op: OperatorProcess;
  let dir: string;
  let ca: TestCa;

  beforeAll(async () => {
    ns = await createTestNamespace('tls');
    dir = await mkdtemp(path.join(tmpdir(), 'ha-signer-tls-e2e-'));
    ca = makeCa(dir, 'e2e-ca');
    const server = issueServerCert(dir, ca, 'e2e-server', `DNS:tsig.${ns.name}.svc,DNS:tsig.${ns.name}.svc.cluster.local`);
    await createSecret(ns.name, 'db', { uri: await createTestDatabase('tls_e2e') });
    await createSecret(ns.name, 'keys', { 'validator-1': validatorKey() });
    await clients().core.createNamespacedSecret({
      namespace: ns.name,
      body: {
        metadata: { name: 'tsig-serving' },
        type: 'kubernetes.io/tls',
        stringData: { 'tls.crt': server.certPem, 'tls.key': server.keyPem },
      },
    });
    op = await startOperatorProcess({ namespace: ns.name });
  });

  afterAll(async () => {
    if (op) await op.stop();
    await ns?.delete();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses malformed spec.tls with the CRD messages', async () => {
    const create = (name: string, tls: unknown) => {
      const body = vhsBody(name, { rollup: { address: ROLLUP_A, version: 'v1' }, clients: { disableAuthentication: true } });
      (body.spec as Record<string, unknown>).tls = tls;
      return rejection(() => createVhs(ns.name, body));
    };
    expect(await create('tls-empty', {})).toContain(
      'tls: set tls.secretName (a kubernetes.io/tls Secret with tls.crt and tls.key) or tls.certManager.issuerRef',
    );
    expect(await create('tls-bad-name', { secretName: 'Bad_Name' })).toContain('tls.secretName must be a Secret name');
    expect(await create('tls-bad-kind', { certManager: { issuerRef: { name: 'ca', kind: 'Vault' } } })).toContain(
      'tls.certManager.issuerRef.kind must be Issuer (same namespace) or ClusterIssuer for group cert-manager.io',
    );
    expect(await create('tls-no-issuer', { certManager: {} })).toMatch(/issuerRef: Required value/);
  });

  it('serves HTTPS with the Secret, probes on the metrics port, Ready', async () => {
    const body = vhsBody('tsig', { rollup: { address: ROLLUP_A, version: 'v1' }, replicas: 1, clients: { disableAuthentication: true } });
    (body.spec as Record<string, unknown>).tls = { secretName: 'tsig-serving' };
    await createVhs(ns.name, body);
    const ready = await waitForCondition(ns.name, 'tsig', 'Ready', 'True', { timeoutMs: 150_000 });
    expect(ready.status?.endpoint).toBe(`https://tsig.${ns.name}.svc:8080`);

    const [signing] = await serviceEndpoints(ns.name, 'tsig', 'http');
    expect(signing).toBeDefined();
    const answer = await httpsGet(signing!.ip, signing!.port, `tsig.${ns.name}.svc`, ca.certPem, '/v1/validators');
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).validators).toHaveLength(1);
    // A CA the certificate does not chain to is refused; plain HTTP on the signing port gets no HTTP answer.
    const other = makeCa(dir, 'other-ca');
    await expect(httpsGet(signing!.ip, signing!.port, `tsig.${ns.name}.svc`, other.certPem, '/livez')).rejects.toThrow();
    // A name the certificate does not carry is refused too (host name verification).
    await expect(httpsGet(signing!.ip, signing!.port, `other.${ns.name}.svc`, ca.certPem, '/livez')).rejects.toThrow(/altnames|Hostname/i);
    await expect(fetch(`http://${signing!.ip}:${signing!.port}/livez`, { signal: AbortSignal.timeout(5_000) })).rejects.toThrow();

    const metrics = await callService(ns.name, 'tsig', '/metrics', { portName: 'metrics' });
    expect(metrics).toHaveLength(1);
    expect(metrics[0]!.status).toBe(200);
    expect(metrics[0]!.body).toMatch(/^ha_signer_tls_certificate_not_after_seconds \d+/m);
  });
});
