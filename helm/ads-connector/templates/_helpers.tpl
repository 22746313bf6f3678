{{/* Names, labels and the connector configuration. */}}

{{- define "ads-connector.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ads-connector.fullname" -}}
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

{{- define "ads-connector.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ads-connector.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ads-connector.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ads-connector.labels" -}}
helm.sh/chart: {{ include "ads-connector.chart" . }}
{{ include "ads-connector.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: ads-connector
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The annotations of an object (commonAnnotations plus extra) as YAML, or nothing; pass (dict "root" $ "extra" $map). */}}
{{- define "ads-connector.annotations" -}}
{{- $all := merge (deepCopy (default dict .extra)) (deepCopy (default dict .root.Values.commonAnnotations)) }}
{{- with $all }}{{ toYaml . }}{{ end }}
{{- end }}

{{- define "ads-connector.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ads-connector.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ads-connector.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "ads-connector.configMapName" -}}
{{- default (printf "%s-config" (include "ads-connector.fullname" .)) .Values.existingConfigMap }}
{{- end }}

{{/* Whether the NHS API needs signed-JWT credentials: a token URL, explicit or from the environment. */}}
{{- define "ads-connector.needsCredentials" -}}
{{- $api := .Values.config.nhs_api }}
{{- if or (has $api.environment (list "int" "prod")) $api.token_url }}true{{ end }}
{{- end }}

{{- define "ads-connector.credentialsSecret" -}}
{{- default (printf "%s-nhs-api" (include "ads-connector.fullname" .)) .Values.nhsApi.credentials.existingSecret }}
{{- end }}

{{- define "ads-connector.privateKeyKey" -}}
{{- default (printf "%s.pem" (toString .Values.config.nhs_api.kid)) .Values.nhsApi.credentials.privateKeyKey }}
{{- end }}

{{/* Chart-level checks that a schema cannot express. */}}
{{- define "ads-connector.validate" -}}
{{- $grace := int64 .Values.deployment.terminationGracePeriodSeconds }}
{{- $drain := int64 (default 20 .Values.config.shutdown.drain_timeout_s) }}
{{- if le $grace $drain }}
{{- fail (printf "deployment.terminationGracePeriodSeconds (%d) must exceed config.shutdown.drain_timeout_s (%d), or Kubernetes kills the pod before the drain commits its offsets" $grace $drain) }}
{{- end }}
{{- if and .Values.autoscaling.enabled .Values.keda.enabled }}
{{- fail "autoscaling.enabled and keda.enabled are exclusive: KEDA creates its own HorizontalPodAutoscaler" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled .Values.metrics.podMonitor.enabled }}
{{- fail "enable metrics.serviceMonitor or metrics.podMonitor, not both: each pod would be scraped twice" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs service.enabled (or use metrics.podMonitor)" }}
{{- end }}
{{- if .Values.kafka.sasl.enabled }}
{{- if not .Values.kafka.sasl.existingSecret }}
{{- fail "kafka.sasl.enabled needs kafka.sasl.existingSecret: the name of a Secret holding the password" }}
{{- end }}
{{- if not .Values.kafka.sasl.username }}
{{- fail "kafka.sasl.enabled needs kafka.sasl.username" }}
{{- end }}
{{- end }}
{{- if and .Values.keda.enabled .Values.kafka.sasl.enabled (not .Values.kafka.sasl.usernameKey) (not .Values.keda.triggerAuthentication.existingName) }}
{{- fail "keda.enabled with kafka.sasl needs kafka.sasl.usernameKey (KEDA reads the username from the Secret) or keda.triggerAuthentication.existingName" }}
{{- end }}
{{- if and .Values.kafka.tls.ca.existingSecret .Values.kafka.tls.ca.existingConfigMap }}
{{- fail "set kafka.tls.ca.existingSecret or kafka.tls.ca.existingConfigMap, not both" }}
{{- end }}
{{- if and (include "ads-connector.needsCredentials" .) (not .Values.config.nhs_api.kid) }}
{{- fail "config.nhs_api.kid is required for the int and prod environments (and whenever token_url is set)" }}
{{- end }}
{{- if and (has .Values.config.nhs_api.environment (list "int" "prod")) (not .Values.config.batch.mode) }}
{{- fail (printf "config.batch.mode must be set (batch or single) when config.nhs_api.environment is %s: NHS England does not publish how several calls are encoded in one POST; confirm it with NHS England during onboarding (docs/operations.md, go-live checklist)" .Values.config.nhs_api.environment) }}
{{- end }}
{{- if and (eq .Values.config.nhs_api.environment "custom") (not .Values.config.nhs_api.base_url) }}
{{- fail "config.nhs_api.base_url is required when config.nhs_api.environment is custom" }}
{{- end }}
{{- if and .Values.config.mesh (not .Values.mesh.credentials.existingSecret) }}
{{- fail "config.mesh needs mesh.credentials.existingSecret: the name of a Secret holding the MESH password and shared key" }}
{{- end }}
{{- if and .Values.config.mesh (ne (not .Values.mesh.credentials.clientCertKey) (not .Values.mesh.credentials.clientKeyKey)) }}
{{- fail "set mesh.credentials.clientCertKey and mesh.credentials.clientKeyKey together (mutual TLS), or neither" }}
{{- end }}
{{- end }}

{{/*
The configuration as a dict: `config` plus what the chart owns (the listen address and the
paths where it mounts secrets).
*/}}
{{- define "ads-connector.configDict" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $kafka := get $cfg "kafka" }}
{{- $props := deepCopy (default dict $kafka.properties) }}
{{- $sasl := .Values.kafka.sasl }}
{{- $tls := .Values.kafka.tls }}
{{- if $sasl.enabled }}
{{- $_ := set $kafka "sasl_password_file" (printf "%s/%s" $sasl.mountPath $sasl.passwordKey) }}
{{- $_ := set $props "sasl.mechanism" (default $sasl.mechanism (get $props "sasl.mechanism")) }}
{{- $_ := set $props "sasl.username" (default $sasl.username (get $props "sasl.username")) }}
{{- end }}
{{- if $tls.enabled }}
{{- if or $tls.ca.existingSecret $tls.ca.existingConfigMap }}
{{- $_ := set $props "ssl.ca.location" (default (printf "%s/ca/%s" $tls.mountPath $tls.ca.key) (get $props "ssl.ca.location")) }}
{{- end }}
{{- if $tls.clientCert.existingSecret }}
{{- $_ := set $props "ssl.certificate.location" (default (printf "%s/client/%s" $tls.mountPath $tls.clientCert.certKey) (get $props "ssl.certificate.location")) }}
{{- $_ := set $props "ssl.key.location" (default (printf "%s/client/%s" $tls.mountPath $tls.clientCert.keyKey) (get $props "ssl.key.location")) }}
{{- if $tls.clientCert.keyPasswordKey }}
{{- $_ := set $kafka "ssl_key_password_file" (printf "%s/client/%s" $tls.mountPath $tls.clientCert.keyPasswordKey) }}
{{- end }}
{{- end }}
{{- end }}
{{- if not (hasKey $props "security.protocol") }}
{{- if and $sasl.enabled $tls.enabled }}
{{- $_ := set $props "security.protocol" "SASL_SSL" }}
{{- else if $sasl.enabled }}
{{- $_ := set $props "security.protocol" "SASL_PLAINTEXT" }}
{{- else if $tls.enabled }}
{{- $_ := set $props "security.protocol" "SSL" }}
{{- end }}
{{- end }}
{{- $_ := set $kafka "properties" $props }}
{{- if include "ads-connector.needsCredentials" . }}
{{- $api := get $cfg "nhs_api" }}
{{- $creds := .Values.nhsApi.credentials }}
{{- $_ := set $api "api_key_file" (printf "%s/%s" $creds.mountPath $creds.apiKeyKey) }}
{{- $_ := set $api "private_key_file" (printf "%s/%s" $creds.mountPath (include "ads-connector.privateKeyKey" .)) }}
{{- end }}
{{- if .Values.config.mesh }}
{{- $mesh := get $cfg "mesh" }}
{{- $mc := .Values.mesh.credentials }}
{{- $_ := set $mesh "password_file" (printf "%s/%s" $mc.mountPath $mc.passwordKey) }}
{{- $_ := set $mesh "shared_key_file" (printf "%s/%s" $mc.mountPath $mc.sharedKeyKey) }}
{{- if $mc.clientCertKey }}
{{- $_ := set $mesh "client_cert_file" (printf "%s/%s" $mc.mountPath $mc.clientCertKey) }}
{{- $_ := set $mesh "client_key_file" (printf "%s/%s" $mc.mountPath $mc.clientKeyKey) }}
{{- end }}
{{- with $mc.caKey }}
{{- $_ := set $mesh "ca_file" (printf "%s/%s" $mc.mountPath .) }}
{{- end }}
{{- end }}
{{- $_ := set $cfg "http" (dict "listen" (printf "0.0.0.0:%d" (int64 .Values.service.port))) }}
{{- toJson $cfg }}
{{- end }}

{{/* TOML: a bare key when it may be one, else a quoted key. */}}
{{- define "ads-connector.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{/* TOML: a scalar or an array. Whole numbers print as integers (values arrive as float64). */}}
{{- define "ads-connector.toml.value" -}}
{{- if kindIs "string" . }}{{ toJson . }}
{{- else if kindIs "bool" . }}{{ . }}
{{- else if or (kindIs "float64" .) (kindIs "float32" .) }}{{ if eq (float64 .) (floor .) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else if kindIs "slice" . }}[{{ range $i, $e := . }}{{ if $i }}, {{ end }}{{ include "ads-connector.toml.value" $e }}{{ end }}]
{{- else if kindIs "map" . }}{{ fail "ads-connector: a table inside an array cannot be rendered as TOML" }}
{{- else }}{{ . }}
{{- end }}
{{- end }}

{{/* TOML: the keys of one table, then its sub-tables. Null values are left out. */}}
{{- define "ads-connector.toml.table" -}}
{{- $prefix := .prefix }}
{{- range $k, $v := .table }}
{{- if not (or (kindIs "map" $v) (kindIs "invalid" $v)) }}
{{ include "ads-connector.toml.key" $k }} = {{ include "ads-connector.toml.value" $v }}
{{- end }}
{{- end }}
{{- range $k, $v := .table }}
{{- if and (kindIs "map" $v) $v }}
{{- $name := include "ads-connector.toml.key" $k }}
{{- if $prefix }}{{ $name = printf "%s.%s" $prefix $name }}{{ end }}

[{{ $name }}]
{{- include "ads-connector.toml.table" (dict "prefix" $name "table" $v) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ads-connector.configToml" -}}
# ads-connector configuration, rendered by the Helm chart from `config` in values.yaml.
# Every key is documented in the connector's README ("Configuration").
{{- include "ads-connector.toml.table" (dict "prefix" "" "table" (include "ads-connector.configDict" . | fromJson)) }}
{{ end }}
