/** Helpers for operator e2e tests. */
import { randomBytes } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import { clients, describePod, listPods, waitFor } from '../../harness/k8s.js';
import {
  GROUP,
  PLURAL,
  VERSION,
  type Condition,
  type ValidatorHASignerResource,
  type ValidatorHASignerSpec,
} from '../../../src/operator/types.js';

export const ROLLUP_A = `0x${'a1'.repeat(20)}`;
export const ROLLUP_B = `0x${'b2'.repeat(20)}`;

export function vhsBody(
  name: string,
  spec: Partial<ValidatorHASignerSpec> & Pick<ValidatorHASignerSpec, 'rollup'>,
): Record<string, unknown> {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'ValidatorHASigner',
    metadata: { name },
    spec: {
      database: { secretRef: { name: 'db' } },
      keys: { secretRef: { name: 'keys' } },
      clients: { disableAuthentication: true },
      ...spec,
    },
  };
}

export async function createVhs(namespace: string, body: Record<string, unknown>): Promise<ValidatorHASignerResource> {
  return (await clients().custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace,
    body,
  })) as ValidatorHASignerResource;
}

export async function getVhs(namespace: string, name: string): Promise<ValidatorHASignerResource> {
  return (await clients().custom.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace,
    name,
  })) as ValidatorHASignerResource;
}

export function condition(v: ValidatorHASignerResource, type: string): Condition | undefined {
  return v.status?.conditions?.find((c) => c.type === type);
}

export async function waitForCondition(
  namespace: string,
  name: string,
  type: string,
  status: string,
  opts: { reason?: string; timeoutMs?: number } = {},
): Promise<ValidatorHASignerResource> {
  let last: ValidatorHASignerResource | undefined;
  return await waitFor(
    async () => {
      last = await getVhs(namespace, name);
      const c = condition(last, type);
      return c?.status === status &&
        (!opts.reason || c.reason === opts.reason) &&
        (last.status?.observedGeneration ?? -1) >= (last.metadata.generation ?? 0)
        ? last
        : undefined;
    },
    {
      timeoutMs: opts.timeoutMs ?? 120_000,
      intervalMs: 200,
      message: async () => {
        const pods = await listPods(namespace).catch(() => []);
        const descr = (await Promise.all(pods.slice(0, 4).map((p) => describePod(namespace, p).catch(() => '')))).join('\n');
        return `${namespace}/${name} ${type}=${status}${opts.reason ? ` (${opts.reason})` : ''}; status: ${JSON.stringify(last?.status)}\n${descr}`;
      },
    },
  );
}

export async function createSecret(namespace: string, name: string, stringData: Record<string, string>): Promise<k8s.V1Secret> {
  return await clients().core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData } });
}

export function validatorKey(): string {
  return `0x${randomBytes(32).toString('hex')}`;
}

export async function exists(fn: () => Promise<unknown>): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (e) {
    if ((e as { code?: number }).code === 404) return false;
    throw e;
  }
}

/** The API server's rejection message of creating/patching a resource (undefined when accepted). */
export async function rejection(fn: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await fn();
    return undefined;
  } catch (e) {
    const body = (e as { body?: string }).body;
    try {
      return (JSON.parse(body ?? '') as { message: string }).message;
    } catch {
      return String(body ?? (e as Error).message);
    }
  }
}
