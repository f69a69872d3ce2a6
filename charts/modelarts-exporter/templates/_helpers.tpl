{{/* The chart's name, or nameOverride. */}}
{{- define "modelarts-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of every object: fullnameOverride, or the release name with the
chart's name appended unless it already contains it. 63 characters at most
(DNS labels).
*/}}
{{- define "modelarts-exporter.fullname" -}}
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

{{- define "modelarts-exporter.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "modelarts-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "modelarts-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelarts-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The Secret with the probes' username and password, when basic auth is on. */}}
{{- define "modelarts-exporter.basicAuthSecret" -}}
{{- .Values.webConfig.basicAuth.existingSecret | default .Values.webConfig.existingSecret | required "webConfig.basicAuth.enabled needs webConfig.basicAuth.existingSecret (or webConfig.existingSecret): the Secret with the plain-text username and password the probes and the ServiceMonitor send" }}
{{- end }}

{{/*
A probe of the path given as the second element of the list.
- Without basic auth: the kubelet's httpGet.
- Basic auth over HTTP: an httpGet probe could only send the password written
  out in the pod spec, so an exec probe builds the Authorization header from
  the mounted Secret's files with the image's busybox (sh, cat, base64, tr,
  wget); the header appears in no object and no environment variable.
- Basic auth over TLS: busybox wget's own TLS is refused by Go's TLS server
  ("missing signature_algorithms"), so the probes check that the port accepts
  connections. The exporter opens its port only once it has loaded its
  configuration, so readiness still waits for one.
*/}}
{{- define "modelarts-exporter.probe" -}}
{{- $ := index . 0 }}
{{- $path := index . 1 }}
{{- if and $.Values.webConfig.basicAuth.enabled $.Values.webConfig.tls -}}
tcpSocket:
  port: http
{{- else if $.Values.webConfig.basicAuth.enabled -}}
exec:
  command:
    - /bin/sh
    - -c
    - >-
      auth=$(printf '%s:%s' "$(cat /etc/modelarts_exporter/probe/username)" "$(cat /etc/modelarts_exporter/probe/password)" | base64 | tr -d '\n')
      && exec wget -q -O /dev/null --header "Authorization: Basic $auth" http://127.0.0.1:9713{{ $path }}
{{- else -}}
httpGet:
  path: {{ $path }}
  port: http
  scheme: {{ ternary "HTTPS" "HTTP" $.Values.webConfig.tls }}
{{- end }}
{{- end }}
