{{/* Names and labels shared by every template of the chart. */}}

{{/* The chart name, or nameOverride. */}}
{{- define "driftline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release-derived name every object starts with (at most 63 characters). */}}
{{- define "driftline.fullname" -}}
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

{{/* Labels of every object. */}}
{{- define "driftline.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "driftline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: driftline
{{- end }}

{{/* Selector labels of one component ("operator", "mlflow"): stable across upgrades. */}}
{{- define "driftline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "driftline.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The operator's ServiceAccount name. */}}
{{- define "driftline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-operator" (include "driftline.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag of an image entry (.image), the tag defaulting to the appVersion. */}}
{{- define "driftline.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}

{{/* The MLflow server's image: mlflow.image, else the trainer image. */}}
{{- define "driftline.mlflowImage" -}}
{{- $image := .Values.mlflow.image }}
{{- if not $image.repository }}
{{- $image = .Values.images.trainer }}
{{- end }}
{{- include "driftline.image" (dict "image" $image "root" .) }}
{{- end }}

{{/* Name of the MLflow Deployment and Service. */}}
{{- define "driftline.mlflowName" -}}
{{- default (printf "%s-mlflow" (include "driftline.fullname" .)) .Values.mlflow.nameOverride }}
{{- end }}

{{/* Name of the PostgreSQL Deployment and Service. */}}
{{- define "driftline.postgresqlName" -}}
{{- default (printf "%s-postgresql" (include "driftline.fullname" .)) .Values.postgresql.nameOverride }}
{{- end }}

{{/*
The webhooks as the operator reads them (DRIFTLINE_WEBHOOKS): JSON, without the secretRefs,
which become environment variables of their own.
*/}}
{{- define "driftline.webhooks" -}}
{{- $out := list -}}
{{- range . -}}
{{- $out = append $out (omit . "secretRef") -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
