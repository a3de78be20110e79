/** The operator's usage text, apart from main.ts so that `ha-signer operator --help` loads no Kubernetes client. */
export const DEFAULT_IMAGE_ENV = 'HA_SIGNER_OPERATOR_IMAGE';

export const OPERATOR_USAGE = `ha-signer operator: reconciles ValidatorHASigner resources (ha-signer.dev/v1alpha1)

Options (environment variable in brackets):
  --kubeconfig PATH                 kubeconfig file [KUBECONFIG]; default in-cluster configuration
  --namespace NS                    watch one namespace [WATCH_NAMESPACE]; default all namespaces
  --namespaced                      Roles only [HA_SIGNER_OPERATOR_NAMESPACED=true]: touch no cluster-scoped object
                                    (needs --namespace; spec.clients.serviceAccounts is then refused: TokenReview
                                    needs a ClusterRoleBinding to system:auth-delegator)
  --leader-election-namespace NS    namespace of the leader Lease [POD_NAMESPACE]; default the pod's namespace
  --claims-namespace NS             namespace of the database claim ConfigMaps; default the leader-election namespace
  --leader-elect true|false         run leader election (default true)
  --lease-name NAME                 Lease name (default ha-signer-operator)
  --lease-duration DURATION         default 15s
  --renew-deadline DURATION         default 10s
  --retry-period DURATION           default 2s
  --identity ID                     leader-election identity [POD_NAME]; default <hostname>_<uuid>
  --image IMAGE                     default signer image [${DEFAULT_IMAGE_ENV}]
  --workers N                       concurrent reconciles (default 4)
  --resync-period DURATION          re-examine every resource this often (default 5m)
  --port PORT                       health and metrics port [HA_SIGNER_OPERATOR_PORT] (default 8081)
  --listen-host HOST                bind address [HA_SIGNER_LISTEN_HOST] (default 0.0.0.0)
Durations: 500ms, 15s, 5m, 1h. Endpoints: /healthz, /readyz, /metrics.`;
