{{/* Name of the chart, or nameOverride. */}}
{{- define "backfill-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-based, at most 63 characters (a DNS label). */}}
{{- define "backfill-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "backfill-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "backfill-operator.labels" -}}
helm.sh/chart: {{ include "backfill-operator.chart" . }}
{{ include "backfill-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: backfill-operator
{{- end }}

{{/* Labels that select the operator's pods (immutable once installed). */}}
{{- define "backfill-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "backfill-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "backfill-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "backfill-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "backfill-operator.peeringName" -}}
{{- default (include "backfill-operator.fullname" .) .Values.peering.name }}
{{- end }}

{{- define "backfill-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
RBAC rules for the namespaced resources the operator reads and writes. Used by the ClusterRole
(all namespaces) and by each per-namespace Role. Least privilege: no wildcards, no Secrets,
nothing the operator does not call (docs/deploy.md lists why each rule exists).
*/}}
{{- define "backfill-operator.namespacedRules" -}}
- apiGroups: ["backfill.dev"]
  resources: ["backfills", "partitionedjobs"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["backfill.dev"]
  resources: ["backfills/status", "partitionedjobs/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["backfill.dev"]
  resources: ["backfills/finalizers", "partitionedjobs/finalizers"]
  verbs: ["update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "list", "watch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* Cluster-scoped read kopf needs in every mode: it scans and watches the CRDs. */}}
{{- define "backfill-operator.crdReadRule" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/* Namespaced mode only: kopf lists and watches namespaces to match its --namespace list. */}}
{{- define "backfill-operator.namespaceReadRule" -}}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/* kopf peering: the operators' keep-alives live in the peering object's status. */}}
{{- define "backfill-operator.peeringRule" -}}
- apiGroups: ["kopf.dev"]
  resources: [{{ . | quote }}]
  verbs: ["get", "list", "watch", "patch", "create"]
{{- end }}
