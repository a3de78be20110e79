/**
 * `ha-signer operator-stop`: the chart's pre-delete hook. Scales the operator Deployment to zero and waits until its
 * pods are gone, while the operator's RBAC still exists, so the leader releases its Lease on SIGTERM (helm uninstall
 * would otherwise delete the RBAC first and the next install waits a lease duration). Never fails the uninstall:
 * problems are logged and it exits 0, unless --strict.
 */
import * as k8s from '@kubernetes/client-node';
import { createLogger } from '../log.js';
import { apiReason, namespaceFlag, parseDurationFlag, podKubeConfig, podNamespace } from './check.js';
import { type Command, UsageError, parseFlags } from './common.js';

const USAGE = `Usage: ha-signer operator-stop --deployment NAME [--namespace NS] [--timeout 120s] [--strict]

Scales the operator Deployment to 0 and waits until its pods have exited (the leader releases its Lease on SIGTERM).
The chart's pre-delete hook runs it before helm uninstall deletes the operator's RBAC. Uses the pod's ServiceAccount
(or KUBECONFIG); needs get/update on deployments/scale and list on pods.
  --deployment NAME         the operator Deployment (required)
  --namespace NS            its namespace (default: the pod's own namespace)
  --timeout DURATION        how long to wait for the pods to exit (default 120s; e.g. 30s, 2m)
  --interval DURATION       pause between checks (default 1s)
  --strict                  exit 1 when the operator could not be stopped (default: log it, exit 0, so that the
                            uninstall goes on)
  --log-level LEVEL         [HA_SIGNER_LOG_LEVEL] default info
  -h, --help                this text`;

class OperatorStopError extends Error {
  readonly code = 'EOPERATORSTOP';
}

interface StopOptions {
  namespace: string;
  deployment: string;
  timeoutMs: number;
  intervalMs: number;
}

/** Scale to 0 (through the scale subresource, whose status names the pods' selector), then wait for the pods. */
export async function stopOperator(kc: k8s.KubeConfig, o: StopOptions, log = createLogger({ component: 'operator-stop' })): Promise<void> {
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const scale = await apps.readNamespacedDeploymentScale({ namespace: o.namespace, name: o.deployment });
  const selector = scale.status?.selector;
  if (!selector) throw new OperatorStopError(`deployment ${o.namespace}/${o.deployment} reports no pod selector`);
  if (scale.spec?.replicas !== 0)
    await apps.replaceNamespacedDeploymentScale({
      namespace: o.namespace,
      name: o.deployment,
      body: { apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: scale.metadata, spec: { replicas: 0 } },
    });
  log.info({ selector, from: scale.spec?.replicas }, `scaled deployment ${o.namespace}/${o.deployment} to 0; waiting for its pods to exit`);
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    const pods = await core.listNamespacedPod({ namespace: o.namespace, labelSelector: selector });
    if (pods.items.length === 0) {
      log.info({}, 'operator pods gone: the leader Lease was released while RBAC was in place');
      return;
    }
    if (Date.now() + o.intervalMs > deadline)
      throw new OperatorStopError(
        `still ${pods.items.length} operator pod(s) after ${o.timeoutMs / 1000}s: ${pods.items.map((p) => p.metadata?.name).join(', ')}`,
      );
    await new Promise((resolve) => setTimeout(resolve, o.intervalMs));
  }
}

export const command: Command = {
  usage: () => USAGE,
  run: async (args) => {
    const { values, positionals } = parseFlags(
      'operator-stop',
      args,
      {
        deployment: { type: 'string' },
        namespace: { type: 'string' },
        timeout: { type: 'string' },
        interval: { type: 'string' },
        strict: { type: 'boolean' },
      },
      true,
    );
    if (positionals.length) throw new UsageError(`operator-stop takes no arguments, got ${positionals.join(' ')}`);
    const deployment = values.deployment;
    if (deployment === undefined) throw new UsageError('operator-stop needs --deployment NAME (the operator Deployment)');
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(deployment) || deployment.length > 253)
      throw new UsageError(`--deployment: ${JSON.stringify(deployment)} is not a Deployment name`);
    const nsRaw = values.namespace ?? (await podNamespace());
    if (nsRaw === undefined) throw new UsageError("--namespace is required outside a pod (the Deployment's namespace)");
    const options: StopOptions = {
      namespace: namespaceFlag('--namespace', nsRaw),
      deployment,
      timeoutMs: parseDurationFlag('--timeout', values.timeout ?? '120s'),
      intervalMs: parseDurationFlag('--interval', values.interval ?? '1s'),
    };
    const kc = podKubeConfig();
    const log = createLogger({ component: 'operator-stop' });
    try {
      await stopOperator(kc, options, log);
    } catch (error) {
      const reason = apiReason(error);
      if (values.strict) throw new OperatorStopError(`could not stop the operator: ${reason}`);
      log.error({ reason }, `could not stop the operator before uninstall (uninstalling anyway): ${reason}`);
    }
  },
};
