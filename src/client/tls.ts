/**
 * How RemoteHASigner reaches https:// endpoints. By default Node's fetch: the system CAs plus NODE_EXTRA_CA_CERTS.
 * With `ca` / `caFile` the signer's certificate must chain to exactly those CAs (an undici Agent whose TLS `ca`
 * replaces the defaults); host names are always checked. There is no switch to skip verification.
 */
import { readFileSync } from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface ClientTlsOptions {
  /** PEM CA certificate(s) the signer's certificate must chain to (instead of the system CAs). */
  ca?: string | Buffer | (string | Buffer)[];
  /** File with the PEM CA certificate(s), e.g. the ca.crt of a cert-manager Secret; read once, at construction. */
  caFile?: string;
}

const PEM_CERTIFICATE = '-----BEGIN CERTIFICATE-----';

/** The fetch RemoteHASigner uses for these options; throws TypeError naming the option on a bad CA. */
export function fetchForTls(options: ClientTlsOptions): FetchLike {
  if (options.ca === undefined && options.caFile === undefined) return (url, init) => fetch(url, init);
  if (options.ca !== undefined && options.caFile !== undefined) throw new TypeError('RemoteHASigner: set ca or caFile, not both');
  let ca: (string | Buffer)[];
  if (options.caFile !== undefined) {
    try {
      ca = [readFileSync(options.caFile)];
    } catch (error) {
      throw new TypeError(
        `RemoteHASigner: caFile ${options.caFile} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        { cause: error },
      );
    }
  } else ca = Array.isArray(options.ca) ? options.ca : [options.ca!];
  const where = options.caFile !== undefined ? `caFile ${options.caFile}` : 'ca';
  if (ca.length === 0 || !ca.every((entry) => entry.toString().includes(PEM_CERTIFICATE)))
    throw new TypeError(`RemoteHASigner: ${where} must hold PEM certificates (${PEM_CERTIFICATE} ...)`);
  const dispatcher = new Agent({ connect: { ca } });
  return async (url, init) =>
    (await undiciFetch(url, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher })) as unknown as Response;
}

/** OpenSSL / Node codes of a certificate the client does not accept. */
const CERTIFICATE_ERROR_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The certificate problem behind a failed fetch, if that is what it was: `{ code, message }` for the error. */
export function certificateProblem(error: unknown): { code: string; message: string } | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CERTIFICATE_ERROR_CODES.has(code))
      return {
        code,
        message: `TLS certificate not accepted (${code}: ${(e as Error).message}); trust the signer's CA with the ca/caFile option or NODE_EXTRA_CA_CERTS`,
      };
  }
  return undefined;
}
