/**
 * HTTPS for the signing port. The certificate chain and key come from two PEM files (a kubernetes.io/tls Secret
 * mounted as a volume: tls.crt, tls.key), checked at start-up with errors that name the variable and the file, and
 * re-read every second while serving: a changed, valid pair replaces the server's secure context in place
 * (`setSecureContext`), so rotation (cert-manager renewing the Secret) needs no restart. New connections get the new
 * certificate; open keep-alive connections keep the one they were made with. A changed pair that is invalid (half
 * written, key not matching) is logged and ignored: the server keeps serving the last valid certificate.
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { FastifyBaseLogger, FastifyServerFactory } from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import { SIGNER_ENV } from '../contract.js';
import { ConfigError } from '../protection/index.js';

export const TLS_RELOAD_INTERVAL_MS = 1_000;

export interface TlsFiles {
  /** Absolute paths, already under HA_SIGNER_FS_ROOT. */
  certFile: string;
  keyFile: string;
}

export interface CertificateInfo {
  subject: string;
  subjectAltName: string | undefined;
  notAfter: Date;
  fingerprint256: string;
}

interface TlsMaterial {
  cert: string;
  key: string;
  info: CertificateInfo;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Both variables or neither: one without the other is refused, naming the missing one. */
export function tlsFilesFromEnv(env: Env, resolvePath: (path: string) => string): TlsFiles | undefined {
  const get = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const cert = get(SIGNER_ENV.tlsCertFile);
  const key = get(SIGNER_ENV.tlsKeyFile);
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined)
    throw new ConfigError(SIGNER_ENV.tlsCertFile, `is required when ${SIGNER_ENV.tlsKeyFile} is set: the PEM certificate chain (tls.crt)`);
  if (key === undefined)
    throw new ConfigError(SIGNER_ENV.tlsKeyFile, `is required when ${SIGNER_ENV.tlsCertFile} is set: the PEM private key (tls.key)`);
  return { certFile: resolvePath(cert), keyFile: resolvePath(key) };
}

async function readPem(variable: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(variable, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** Reads and checks the pair: a parseable certificate, a parseable key, and the key belongs to the certificate. */
export async function loadTlsMaterial(files: TlsFiles): Promise<TlsMaterial> {
  const cert = await readPem(SIGNER_ENV.tlsCertFile, files.certFile);
  const key = await readPem(SIGNER_ENV.tlsKeyFile, files.keyFile);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (error) {
    throw new ConfigError(SIGNER_ENV.tlsCertFile, `${files.certFile} is not a PEM certificate: ${(error as Error).message}`);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    // The message of a failed key parse is not echoed: it could quote key material.
    throw new ConfigError(SIGNER_ENV.tlsKeyFile, `${files.keyFile} is not an unencrypted PEM private key`);
  }
  if (!x509.checkPrivateKey(privateKey))
    throw new ConfigError(
      SIGNER_ENV.tlsKeyFile,
      `${files.keyFile} does not belong to the certificate in ${files.certFile} (${SIGNER_ENV.tlsCertFile}); mount the tls.key of the same Secret`,
    );
  try {
    createSecureContext({ cert, key }); // what the server will do; catches a chain OpenSSL refuses
  } catch (error) {
    throw new ConfigError(SIGNER_ENV.tlsCertFile, `${files.certFile} with ${files.keyFile} is refused by TLS: ${(error as Error).message}`);
  }
  return {
    cert,
    key,
    info: {
      subject: x509.subject.replace(/\n/g, ', '),
      subjectAltName: x509.subjectAltName,
      notAfter: new Date(x509.validTo),
      fingerprint256: x509.fingerprint256,
    },
  };
}

/** The certificate-expiry gauge on a registry (also used by the chart's alert test to know the name). */
export function registerTlsMetrics(registry: Registry): Gauge {
  return new Gauge({
    name: 'ha_signer_tls_certificate_not_after_seconds',
    help: 'Expiry (Unix time) of the TLS certificate the signing port serves',
    registers: [registry],
  });
}

const digest = (cert: string, key: string): string => createHash('sha256').update(cert).update('\0').update(key).digest('hex');

/** The HTTPS side of `serve`: a server factory for fastify, and the file watch that rotates the certificate. */
export class TlsEndpoint {
  private server: HttpsServer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastDigest: string;
  private lastError: string | undefined;
  private expiry: Gauge | undefined;
  private reloading: Promise<void> | undefined;

  private constructor(
    readonly files: TlsFiles,
    private material: TlsMaterial,
  ) {
    this.lastDigest = digest(material.cert, material.key);
  }

  /** Loads the pair; throws ConfigError (start-up refuses) on anything wrong with it. */
  static async open(files: TlsFiles): Promise<TlsEndpoint> {
    return new TlsEndpoint(files, await loadTlsMaterial(files));
  }

  get certificate(): CertificateInfo {
    return this.material.info;
  }

  /** For fastify's `serverFactory`: an HTTPS server with the loaded pair (TLS 1.2 at least). */
  readonly serverFactory: FastifyServerFactory = (handler) => {
    this.server = createHttpsServer({ cert: this.material.cert, key: this.material.key, minVersion: 'TLSv1.2' }, handler);
    // fastify's types assume node:http; an https.Server is one (it extends tls.Server with the same request API).
    return this.server as unknown as HttpServer;
  };

  /** Starts re-reading the files; exports the certificate's expiry as a gauge on the signer's registry. */
  watch(log: FastifyBaseLogger, registry?: Registry, intervalMs = TLS_RELOAD_INTERVAL_MS): void {
    if (registry) {
      this.expiry = registerTlsMetrics(registry);
      this.expiry.set(this.material.info.notAfter.getTime() / 1000);
    }
    log.info({ tls: this.logFields() }, 'signing port serves HTTPS');
    this.timer = setInterval(() => void this.reload(log), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Re-reads the files now (also what the interval does); applies a changed valid pair. */
  async reload(log: FastifyBaseLogger): Promise<void> {
    this.reloading ??= this.reloadOnce(log).finally(() => (this.reloading = undefined));
    await this.reloading;
  }

  private async reloadOnce(log: FastifyBaseLogger): Promise<void> {
    let cert: string;
    let key: string;
    try {
      [cert, key] = await Promise.all([readFile(this.files.certFile, 'utf8'), readFile(this.files.keyFile, 'utf8')]);
    } catch (error) {
      this.reportOnce(log, `cannot read the TLS files: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      return;
    }
    const next = digest(cert, key);
    if (next === this.lastDigest) return;
    let material: TlsMaterial;
    try {
      material = await loadTlsMaterial(this.files);
    } catch (error) {
      this.reportOnce(log, (error as Error).message);
      return;
    }
    // The files may have changed again between the two reads; what was validated is what is applied.
    this.server?.setSecureContext({ cert: material.cert, key: material.key, minVersion: 'TLSv1.2' });
    this.material = material;
    this.lastDigest = digest(material.cert, material.key);
    this.lastError = undefined;
    this.expiry?.set(material.info.notAfter.getTime() / 1000);
    log.info({ tls: this.logFields() }, 'TLS certificate reloaded');
  }

  private reportOnce(log: FastifyBaseLogger, message: string): void {
    if (message === this.lastError) return;
    this.lastError = message;
    log.error(
      { certFile: this.files.certFile, keyFile: this.files.keyFile, err: message },
      'TLS files changed but are not usable; still serving the previous certificate',
    );
  }

  private logFields(): Record<string, string | undefined> {
    const info = this.material.info;
    return {
      subject: info.subject,
      subjectAltName: info.subjectAltName,
      notAfter: info.notAfter.toISOString(),
      fingerprint256: info.fingerprint256,
    };
  }
}
