/**
 * TLS of the signing port (spec.tls) and the signer's separate plain-HTTP metrics port. Pure.
 *
 * spec.tls.secretName: a kubernetes.io/tls Secret (tls.crt, tls.key) in the resource's namespace, made by the user or
 * by cert-manager. spec.tls.certManager.issuerRef: the operator owns a cert-manager Certificate `<name>-tls` for the
 * Service's DNS names, whose Secret (`<name>-tls` unless secretName says otherwise) the pods mount. The Secret is
 * mounted as a volume (never subPath), so a renewal reaches running pods and `serve` reloads it without a restart;
 * it is not part of the pods' secrets checksum, so a renewal rolls nothing.
 *
 * Probes and scrapers use the metrics port (plain HTTP, /livez, /readyz, /metrics only), so kubelet probes work the
 * same with and without TLS and a NetworkPolicy can admit scrapers without admitting them to the signing API.
 */
import type * as k8s from '@kubernetes/client-node';
import { POD_PATHS, SIGNER_ENV, SIGNER_METRICS_PORT } from '../../contract.js';
import type { ValidatorHASignerResource } from '../types.js';
import { names, ownedMeta, serviceHost } from './names.js';

export const CERT_MANAGER_GROUP_VERSION = 'cert-manager.io/v1';
/** Name of the metrics container/Service port. */
export const METRICS_PORT_NAME = 'metrics';

export interface TlsSpec {
  /** kubernetes.io/tls Secret with tls.crt and tls.key (for certManager: the Secret the Certificate writes). */
  secretName?: string;
  certManager?: {
    issuerRef: { name: string; kind?: string; group?: string };
    /** Names besides the Service's own DNS names. */
    dnsNames?: string[];
    duration?: string;
    renewBefore?: string;
  };
}

export function tlsOf(vhs: ValidatorHASignerResource): TlsSpec | undefined {
  return vhs.spec.tls;
}

export function tlsEnabled(vhs: ValidatorHASignerResource): boolean {
  const tls = tlsOf(vhs);
  return tls?.secretName !== undefined || tls?.certManager !== undefined;
}

export function certificateName(vhs: ValidatorHASignerResource): string {
  return `${names.service(vhs)}-tls`;
}

/** The Secret the pods mount, or undefined without TLS. */
export function tlsSecretName(vhs: ValidatorHASignerResource): string | undefined {
  const tls = tlsOf(vhs);
  if (tls?.secretName) return tls.secretName;
  return tls?.certManager ? certificateName(vhs) : undefined;
}

export function certificateRequested(vhs: ValidatorHASignerResource): boolean {
  return tlsOf(vhs)?.certManager !== undefined;
}

/** The names clients use for the Service (short, namespaced, cluster-local). */
export function serviceDnsNames(vhs: ValidatorHASignerResource): string[] {
  const service = names.service(vhs);
  const ns = vhs.metadata.namespace;
  return [service, `${service}.${ns}`, serviceHost(vhs), `${service}.${ns}.svc.cluster.local`];
}

/** cert-manager Certificate for the signer Service (created only when cert-manager.io/v1 is served). */
export function buildCertificate(vhs: ValidatorHASignerResource): k8s.KubernetesObject & { spec: Record<string, unknown> } {
  const cm = tlsOf(vhs)?.certManager;
  if (!cm) throw new Error('buildCertificate: spec.tls.certManager is not set');
  const dnsNames = [...serviceDnsNames(vhs)];
  for (const name of cm.dnsNames ?? []) if (!dnsNames.includes(name)) dnsNames.push(name);
  return {
    apiVersion: CERT_MANAGER_GROUP_VERSION,
    kind: 'Certificate',
    metadata: ownedMeta(vhs, certificateName(vhs), 'signer'),
    spec: {
      secretName: tlsSecretName(vhs),
      commonName: serviceHost(vhs),
      dnsNames,
      usages: ['server auth', 'digital signature'],
      // A new key on every renewal: a leaked key stops being useful at the next renewal.
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
      issuerRef: { name: cm.issuerRef.name, kind: cm.issuerRef.kind ?? 'Issuer', group: cm.issuerRef.group ?? 'cert-manager.io' },
      ...(cm.duration ? { duration: cm.duration } : {}),
      ...(cm.renewBefore ? { renewBefore: cm.renewBefore } : {}),
    },
  };
}

/** Env the signer container gets for TLS and the metrics port. */
export function tlsEnv(vhs: ValidatorHASignerResource): k8s.V1EnvVar[] {
  const env: k8s.V1EnvVar[] = [{ name: SIGNER_ENV.metricsPort, value: String(SIGNER_METRICS_PORT) }];
  if (tlsEnabled(vhs))
    env.push({ name: SIGNER_ENV.tlsCertFile, value: POD_PATHS.tlsCertFile }, { name: SIGNER_ENV.tlsKeyFile, value: POD_PATHS.tlsKeyFile });
  return env;
}

/** The TLS Secret volume and its mount (only tls.crt and tls.key; ca.crt stays out of the pod). */
export function tlsVolume(vhs: ValidatorHASignerResource): { volume: k8s.V1Volume; mount: k8s.V1VolumeMount } | undefined {
  const secretName = tlsSecretName(vhs);
  if (!secretName) return undefined;
  return {
    volume: {
      name: 'tls',
      secret: {
        secretName,
        defaultMode: 0o440,
        items: [
          { key: 'tls.crt', path: 'tls.crt' },
          { key: 'tls.key', path: 'tls.key' },
        ],
      },
    },
    mount: { name: 'tls', mountPath: POD_PATHS.tlsDir, readOnly: true },
  };
}

export const metricsContainerPort: k8s.V1ContainerPort = { name: METRICS_PORT_NAME, containerPort: SIGNER_METRICS_PORT, protocol: 'TCP' };
export const metricsServicePort: k8s.V1ServicePort = {
  name: METRICS_PORT_NAME,
  port: SIGNER_METRICS_PORT,
  targetPort: METRICS_PORT_NAME,
  protocol: 'TCP',
};
