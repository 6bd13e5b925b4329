{{/* Names, labels and small conversions shared by every template. */}}

{{- define "sextant.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sextant.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "sextant.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "sextant.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; `component` (agent, collector, ruler) is added per part. */}}
{{- define "sextant.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "sextant.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one part: call with (dict "root" $ "component" "agent"). */}}
{{- define "sextant.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sextant.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "sextant.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* A Kubernetes quantity (256Mi, 1Gi) as a Sextant size (256MiB, 1GiB). */}}
{{- define "sextant.size" -}}
{{- printf "%sB" (toString .) -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: the drain deadline (whole seconds) plus 15 s. */}}
{{- define "sextant.gracePeriod" -}}
{{- add (trimSuffix "s" (toString .) | atoi) 15 -}}
{{- end -}}

{{/* The collectors' headless Service (agents resolve it to every collector). */}}
{{- define "sextant.collectorHeadless" -}}
{{- printf "%s-collector-headless.%s.svc" (include "sextant.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "sextant.rulerName" -}}
{{- printf "%s-ruler" (include "sextant.fullname" .) -}}
{{- end -}}

{{/* resources: one memory value is request and limit; CPU request, optional limit. */}}
{{- define "sextant.resources" -}}
requests:
  cpu: {{ .cpu.request | quote }}
  memory: {{ .memory | quote }}
limits:
  memory: {{ .memory | quote }}
  {{- with .cpu.limit }}
  cpu: {{ . | quote }}
  {{- end }}
{{- end -}}

{{/* The container securityContext of every Sextant container but the agent's user. */}}
{{- define "sextant.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Environment every Sextant container gets. */}}
{{- define "sextant.env" -}}
- name: SEXTANT_LOG
  value: {{ .Values.logLevel | quote }}
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: NODE_IP
  valueFrom:
    fieldRef:
      fieldPath: status.hostIP
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- with .Values.aws.region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Probes on the admin port. */}}
{{- define "sextant.probes" -}}
livenessProbe:
  httpGet: { path: /healthz, port: admin }
  periodSeconds: 10
  failureThreshold: 6
readinessProbe:
  httpGet: { path: /readyz, port: admin }
  periodSeconds: 5
  failureThreshold: 3
{{- end -}}

{{- define "sextant.collectorServiceAccount" -}}
{{- default (printf "%s-collector" (include "sextant.fullname" .)) .Values.collector.serviceAccount.name -}}
{{- end -}}

{{/* Pod securityContext of the collectors and rulers: the image's non-root user. */}}
{{- define "sextant.podSecurityNonRoot" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Labels of one part's objects and pods: (dict "root" $ "component" "agent"). */}}
{{- define "sextant.partLabels" -}}
{{ include "sextant.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}
