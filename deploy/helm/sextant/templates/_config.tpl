{{/*
Sextant's config for each part, built from the values; `<part>.config` is merged over it
(maps key by key, lists replaced). `${NODE_NAME}` and friends are Sextant's own environment
substitution, resolved in the pod.
*/}}

{{- define "sextant.agentConfig" -}}
{{- $a := .Values.agent -}}
{{- $inputs := list -}}
data_dir: /var/lib/sextant
admin: { address: "0.0.0.0:8686" }
drain_deadline: {{ $a.drainDeadline }}
memory: { limit: {{ include "sextant.size" $a.memory }} }
agent:
  sources:
    {{- if $a.logs.enabled }}
    {{- $inputs = append $inputs "pods" }}
    pods:
      type: kubernetes_logs
      root: /var/log/pods
      {{- with $a.logs.excludeNamespaces }}
      exclude_namespaces: {{ toJson . }}
      {{- end }}
    {{- end }}
    {{- if $a.hostMetrics.enabled }}
    {{- $inputs = append $inputs "host" }}
    host:
      type: host_metrics
      root: /host
      interval: {{ $a.hostMetrics.interval }}
    {{- end }}
    {{- $inputs = append $inputs "scrape" }}
    scrape:
      type: prometheus_scrape
      scrape_interval: {{ $a.scrape.interval }}
      scrape_configs:
        # Its own /metrics, as the node's: `instance` is the node, `cluster` the cluster.
        - job_name: sextant
          static_configs:
            - targets: ["127.0.0.1:8686"]
              labels:
                {{- with .Values.clusterName }}
                cluster: {{ . | quote }}
                {{- end }}
                node: "${NODE_NAME}"
          relabel_configs:
            - { target_label: instance, replacement: "${NODE_NAME}" }
        {{- if $a.scrape.pods }}
        - job_name: pods
          kubernetes_sd_configs: [{ role: pod, prometheus_io_annotations: true }]
          {{- with .Values.clusterName }}
          relabel_configs:
            - { target_label: cluster, replacement: {{ . | quote }} }
          {{- end }}
        {{- end }}
        {{- if $a.scrape.kubelet }}
        - job_name: kubelet
          kubernetes_sd_configs: [{ role: node }]
          scheme: https
          bearer_token_file: /var/run/secrets/kubernetes.io/serviceaccount/token
          tls_config: { insecure_skip_verify: true }
        {{- end }}
        {{- if $a.scrape.cadvisor }}
        - job_name: cadvisor
          kubernetes_sd_configs: [{ role: node }]
          scheme: https
          metrics_path: /metrics/cadvisor
          bearer_token_file: /var/run/secrets/kubernetes.io/serviceaccount/token
          tls_config: { insecure_skip_verify: true }
        {{- end }}
    {{- if $a.traces.otlp }}
    {{- $inputs = append $inputs "otlp" }}
    otlp:
      type: otlp
      address: "0.0.0.0:4318"
      grpc_address: "0.0.0.0:4317"
    {{- end }}
    {{- if $a.traces.xray }}
    {{- $inputs = append $inputs "xray" }}
    xray:
      type: xray_udp
      address: "0.0.0.0:2000"
      {{- with $.Values.aws.region }}
      sampling_proxy: { aws: { region: {{ . | quote }} } }
      {{- end }}
    {{- end }}
  sinks:
    to_collector:
      type: otlp
      inputs: {{ toJson $inputs }}
      endpoint: "http://{{ include "sextant.collectorHeadless" . }}:4318"
      queue:
        disk: { max_bytes: {{ $a.buffer.maxBytes }} }
{{- end -}}

{{- define "sextant.collectorConfig" -}}
{{- $c := .Values.collector -}}
{{- $s := $c.sinks -}}
{{- $disk := printf "{ disk: { max_bytes: %s } }" $c.persistence.bufferMaxBytes -}}
data_dir: /var/lib/sextant
admin: { address: "0.0.0.0:8686" }
drain_deadline: {{ $c.drainDeadline }}
memory: { limit: {{ include "sextant.size" $c.memory }} }
collector:
  sources:
    otlp:
      type: otlp
      address: "0.0.0.0:4318"
      grpc_address: "0.0.0.0:4317"
    {{- if .Values.alerting.enabled }}
    # Only what the rules select goes on to the ruler pair.
    to_rulers:
      type: prometheus_rules
      inputs: [otlp]
      rule_files: ["/etc/sextant/rules/*.yml"]
      forward_only: true
    {{- end }}
  sinks:
    {{- if $s.cloudwatchLogs.enabled }}
    cloudwatch_logs:
      type: aws_cloudwatch_logs
      inputs: [otlp]
      log_group: {{ default (printf "/eks/%s/{k8s.namespace.name}" (default "cluster" .Values.clusterName)) $s.cloudwatchLogs.logGroup | quote }}
      log_stream: {{ $s.cloudwatchLogs.logStream | quote }}
      retention_days: {{ $s.cloudwatchLogs.retentionDays }}
      queue: {{ $disk }}
    {{- end }}
    {{- if $s.xray.enabled }}
    xray:
      type: aws_xray
      inputs: [otlp]
      queue: {{ $disk }}
    {{- end }}
    {{- if $s.cloudwatchMetrics.enabled }}
    cloudwatch_metrics:
      type: aws_cloudwatch_metrics
      inputs: [otlp]
      namespace: {{ $s.cloudwatchMetrics.namespace | quote }}
      queue: {{ $disk }}
    {{- end }}
    {{- if $s.prometheusRemoteWrite.enabled }}
    remote_write:
      type: prometheus_remote_write
      inputs: [otlp]
      endpoint: {{ required "collector.sinks.prometheusRemoteWrite.endpoint" $s.prometheusRemoteWrite.endpoint | quote }}
      {{- if $s.prometheusRemoteWrite.sigv4 }}
      auth: { type: sigv4{{ with $.Values.aws.region }}, region: {{ . | quote }}{{ end }} }
      {{- end }}
      queue: {{ $disk }}
    {{- end }}
    {{- if $s.opensearch.enabled }}
    opensearch:
      type: opensearch
      inputs: [otlp]
      endpoint: {{ required "collector.sinks.opensearch.endpoint" $s.opensearch.endpoint | quote }}
      index: {{ $s.opensearch.index | quote }}
      {{- if $s.opensearch.sigv4 }}
      auth: { type: sigv4{{ with $.Values.aws.region }}, region: {{ . | quote }}{{ end }} }
      {{- end }}
      queue: {{ $disk }}
    {{- end }}
    {{- if .Values.alerting.enabled }}
    {{- $ruler := include "sextant.rulerName" . }}
    {{- range $i := until 2 }}
    ruler_{{ $i }}:
      type: otlp
      inputs: [to_rulers]
      endpoint: "http://{{ $ruler }}-{{ $i }}.{{ $ruler }}.{{ $.Release.Namespace }}.svc:4318"
    {{- end }}
    {{- end }}
{{- end -}}

{{- define "sextant.rulerConfig" -}}
{{- $al := .Values.alerting -}}
data_dir: /var/lib/sextant
admin: { address: "0.0.0.0:8686" }
drain_deadline: {{ .Values.ruler.drainDeadline }}
memory: { limit: {{ include "sextant.size" .Values.ruler.memory }} }
collector:
  sources:
    otlp:
      type: otlp
      address: "0.0.0.0:4318"
    rules:
      type: prometheus_rules
      inputs: [otlp]
      rule_files: ["/etc/sextant/rules/*.yml"]
      {{- with .Values.clusterName }}
      external_labels: { cluster: {{ . | quote }} }
      {{- end }}
      lease:
        name: {{ include "sextant.rulerName" . }}
      alerting:
        {{- if $al.route }}
        route: {{ toJson $al.route }}
        {{- else }}
        route:
          receiver: sns
          group_by: [alertname, cluster]
        {{- end }}
        {{- if $al.receivers }}
        receivers: {{ toJson $al.receivers }}
        {{- else }}
        receivers:
          - name: sns
            sns_configs:
              - topic_arn: {{ required "alerting.topicArn (or alerting.receivers) when alerting.enabled" $al.topicArn | quote }}
        {{- end }}
        {{- with $al.inhibitRules }}
        inhibit_rules: {{ toJson . }}
        {{- end }}
  sinks:
    # The forwarded samples serve the rules only.
    forwarded: { type: blackhole, inputs: [otlp] }
    sns:
      type: aws_sns
      inputs: [rules]
      dead_letter: { path: /var/lib/sextant/sns-dead-letter.jsonl }
{{- end -}}

{{/* A part's final config: (dict "root" $ "part" "agent"). */}}
{{- define "sextant.config" -}}
{{- $base := include (printf "sextant.%sConfig" .part) .root | fromYaml -}}
{{- $extra := deepCopy (index .root.Values .part).config -}}
{{- toYaml (mustMergeOverwrite $base $extra) -}}
{{- end -}}
