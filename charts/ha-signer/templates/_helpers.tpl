{{/* Chart name, overridable with nameOverride. */}}
{{- define "ha-signer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified name: fullnameOverride, else <release>-<name> (or <release> when it already contains the name). */}}
{{- define "ha-signer.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "ha-signer.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ha-signer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ha-signer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Labels of every object except the CRD (see crdLabels). */}}
{{- define "ha-signer.labels" -}}
{{ include "ha-signer.selectorLabels" . }}
{{ include "ha-signer.releaseLabels" . }}
{{- end -}}

{{/* Labels of the hook and test pods: not the operator's selector (the uninstall hook waits for those pods to go). */}}
{{- define "ha-signer.componentLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "ha-signer.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{ include "ha-signer.releaseLabels" $root }}
{{- end -}}

{{- define "ha-signer.releaseLabels" -}}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: ha-signer
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "ha-signer.crdLabels" -}}
app.kubernetes.io/name: ha-signer
app.kubernetes.io/part-of: ha-signer
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: crds
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "ha-signer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ha-signer.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ha-signer.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Milliseconds of a duration value (500ms, 15s, 5m, 1h), as the operator parses it (src/operator/main.ts). */}}
{{- define "ha-signer.durationMs" -}}
{{- $raw := toString . -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$" $raw) -}}
{{- fail (printf "%q is not a duration such as 500ms, 15s, 5m or 1h" $raw) -}}
{{- end -}}
{{- $unit := regexFind "(ms|s|m|h)$" $raw -}}
{{- $number := float64 (trimSuffix $unit $raw) -}}
{{- $scale := get (dict "ms" 1.0 "s" 1000.0 "m" 60000.0 "h" 3600000.0) $unit -}}
{{- mulf $number $scale -}}
{{- end -}}

{{/*
Values the schema cannot relate to each other but the operator refuses at start (a crash loop after install):
checked here so that `helm install/upgrade/template` fails with the value's name instead.
Same rules as validateLeaderElection in src/operator/leader.ts.
*/}}
{{- define "ha-signer.validateValues" -}}
{{- $le := .Values.leaderElection -}}
{{- $lease := include "ha-signer.durationMs" $le.leaseDuration | float64 -}}
{{- $renew := include "ha-signer.durationMs" $le.renewDeadline | float64 -}}
{{- $retry := include "ha-signer.durationMs" $le.retryPeriod | float64 -}}
{{- $resync := include "ha-signer.durationMs" .Values.resyncPeriod | float64 -}}
{{- if not (gt $lease $renew) -}}
{{- fail (printf "leaderElection.renewDeadline (%s) must be shorter than leaderElection.leaseDuration (%s): the leader must renew before its lease expires" $le.renewDeadline $le.leaseDuration) -}}
{{- end -}}
{{- if not (gt $renew (mulf $retry 1.2)) -}}
{{- fail (printf "leaderElection.retryPeriod (%s) must be shorter than leaderElection.renewDeadline (%s) / 1.2: the leader needs more than one retry before the deadline" $le.retryPeriod $le.renewDeadline) -}}
{{- end -}}
{{- if not (gt $retry 0.0) -}}
{{- fail (printf "leaderElection.retryPeriod (%s) must be greater than zero" $le.retryPeriod) -}}
{{- end -}}
{{- if not (gt $resync 0.0) -}}
{{- fail (printf "resyncPeriod (%s) must be greater than zero, e.g. 5m" .Values.resyncPeriod) -}}
{{- end -}}
{{- $limit := "" -}}
{{- with .Values.resources }}{{ with .limits }}{{ $limit = toString (default "" .memory) }}{{ end }}{{ end -}}
{{- $limitMiB := 0 -}}
{{- if hasSuffix "Gi" $limit }}{{ $limitMiB = mul (atoi (trimSuffix "Gi" $limit)) 1024 }}{{ else if hasSuffix "Mi" $limit }}{{ $limitMiB = atoi (trimSuffix "Mi" $limit) }}{{ end -}}
{{- if and (gt (int .Values.maxHeapMiB) 0) (gt (int $limitMiB) 0) (ge (int .Values.maxHeapMiB) (int $limitMiB)) -}}
{{- fail (printf "maxHeapMiB (%d) must be below resources.limits.memory (%s, %d MiB); about half of it leaves room for the rest of the process" (int .Values.maxHeapMiB) $limit (int $limitMiB)) -}}
{{- end -}}
{{- if and .Values.rbac.namespaced (not .Values.watchNamespace) -}}
{{- fail "rbac.namespaced=true needs watchNamespace: the operator can only be limited to Roles when it watches one namespace" -}}
{{- end -}}
{{- end -}}

{{/*
Operator RBAC rules on namespaced kinds (same as config/rbac/role.yaml, which test/operator/unit/chart.test.ts keeps
equal to the rendered ClusterRole). Used by the ClusterRole, and by the Role of a namespaced install.
*/}}
{{- define "ha-signer.namespacedRules" -}}
- apiGroups: [ha-signer.dev]
  resources: [validatorhasigners]
  verbs: [get, list, watch, patch, update]
- apiGroups: [ha-signer.dev]
  resources: [validatorhasigners/status]
  verbs: [get, patch, update]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services, serviceaccounts, configmaps]
  verbs: [get, list, create, update, patch, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, create, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors]
  verbs: [get, create, patch, delete]
- apiGroups: [cert-manager.io]
  resources: [certificates]
  verbs: [get, create, patch, delete]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{/* Cluster-scoped: TokenReview bindings of signers with ServiceAccount clients (never in a namespaced install). */}}
{{- define "ha-signer.clusterRules" -}}
- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterrolebindings]
  verbs: [get, list, create, patch, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterroles]
  verbs: [bind]
  resourceNames: ["system:auth-delegator"]
{{- end -}}

{{/* Monitoring objects: rendered when enabled and the API is served, or when forced (helm template, GitOps). */}}
{{- define "ha-signer.renderMonitoring" -}}
{{- $cfg := index . 0 -}}
{{- $root := index . 1 -}}
{{- $api := index . 2 -}}
{{- if and $cfg.enabled (or $cfg.force ($root.Capabilities.APIVersions.Has $api)) -}}true{{- end -}}
{{- end -}}

{{/* k=v,k=v of a label map (sorted keys), for label selectors in query strings. */}}
{{- define "ha-signer.selectorString" -}}
{{- $pairs := list -}}
{{- range $k, $v := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}
