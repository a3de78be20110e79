// pre-delete hook: scale the operator to zero and wait until its pods are gone, while its RBAC still exists, so the
// leader releases the Lease on SIGTERM. Never fails the uninstall: problems are printed and the hook exits 0.
import { readFileSync } from 'node:fs';

const ns = process.env.TARGET_NAMESPACE;
const deployment = process.env.TARGET_DEPLOYMENT;
const selector = process.env.TARGET_SELECTOR;
const deadline = Date.now() + Number(process.env.TIMEOUT_SECONDS ?? '120') * 1000;
const api = `https://${process.env.KUBERNETES_SERVICE_HOST}:${process.env.KUBERNETES_SERVICE_PORT}`;
const token = readFileSync(process.env.TOKEN_FILE ?? '/var/run/secrets/kubernetes.io/serviceaccount/token', 'utf8').trim();

async function call(method, path, body, contentType) {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body ? { 'content-type': contentType } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

try {
  const scalePath = `/apis/apps/v1/namespaces/${ns}/deployments/${deployment}/scale`;
  await call('PATCH', scalePath, { spec: { replicas: 0 } }, 'application/merge-patch+json');
  console.log(`scaled deployment ${ns}/${deployment} to 0; waiting for its pods to exit`);
  for (;;) {
    const pods = await call('GET', `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(selector)}`);
    if (pods.items.length === 0) {
      console.log('operator pods gone: the leader Lease was released while RBAC was in place');
      break;
    }
    if (Date.now() > deadline) {
      console.error(`still ${pods.items.length} operator pod(s) after the timeout; uninstalling anyway`);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
} catch (error) {
  console.error(`could not stop the operator before uninstall (uninstalling anyway): ${error.message}`);
}
process.exit(0);
