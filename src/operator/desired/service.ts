/** The Service in front of the signer pods. Pure. */
import type * as k8s from '@kubernetes/client-node';
import { SIGNER_PORT, type ValidatorHASignerResource } from '../types.js';
import { names, ownedMeta, selectorLabels, serviceHost } from './names.js';
import { metricsServicePort, tlsEnabled } from './tls.js';

export function buildService(vhs: ValidatorHASignerResource): k8s.V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMeta(vhs, names.service(vhs), 'signer'),
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(vhs),
      ports: [{ name: 'http', port: SIGNER_PORT, targetPort: 'http', protocol: 'TCP' }, metricsServicePort],
    },
  };
}

export function endpointUrl(vhs: ValidatorHASignerResource): string {
  return `${tlsEnabled(vhs) ? 'https' : 'http'}://${serviceHost(vhs)}:${SIGNER_PORT}`;
}
