/** The restricted Pod Security Standard, as pod and container security contexts. Pure. */
import type * as k8s from '@kubernetes/client-node';

/** UID/GID of the `node` user of the node:*-slim base image (Dockerfile). */
export const RUN_AS_USER = 1000;

export function podSecurityContext(): k8s.V1PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: RUN_AS_USER,
    runAsGroup: RUN_AS_USER,
    fsGroup: RUN_AS_USER,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

export function containerSecurityContext(): k8s.V1SecurityContext {
  return {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}
