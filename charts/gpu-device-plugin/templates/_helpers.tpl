{{/* Names, labels and the decisions the DaemonSet template shares. */}}

{{- define "gpu-device-plugin.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gpu-device-plugin.fullname" -}}
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

{{- define "gpu-device-plugin.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "gpu-device-plugin.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gpu-device-plugin.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gpu-device-plugin.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gpu-device-plugin.labels" -}}
helm.sh/chart: {{ include "gpu-device-plugin.chart" . }}
{{ include "gpu-device-plugin.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "gpu-device-plugin.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The device-list strategies as a comma-separated string ("" when unset). */}}
{{- define "gpu-device-plugin.deviceListStrategy" -}}
{{- $v := .Values.deviceListStrategy }}
{{- $items := list }}
{{- if kindIs "string" $v }}
{{- $items = splitList "," $v }}
{{- else if kindIs "slice" $v }}
{{- $items = $v }}
{{- end }}
{{- $out := list }}
{{- range $items }}
{{- $out = append $out (trim .) }}
{{- end }}
{{- join "," $out }}
{{- end }}

{{/* "true" when a CDI device-list strategy is chosen. */}}
{{- define "gpu-device-plugin.usesCDI" -}}
{{- $s := splitList "," (include "gpu-device-plugin.deviceListStrategy" .) }}
{{- if or (has "cdi-annotations" $s) (has "cdi-cri" $s) }}true{{ end }}
{{- end }}

{{/* "true" when the volume-mounts device-list strategy is chosen. */}}
{{- define "gpu-device-plugin.usesVolumeMounts" -}}
{{- $s := splitList "," (include "gpu-device-plugin.deviceListStrategy" .) }}
{{- if has "volume-mounts" $s }}true{{ end }}
{{- end }}

{{/*
"true" when the plugin may run a non-none MIG strategy: MIG_STRATEGY (which overrides
the file) says so, or, when it is unset, an inline config does, or an external
ConfigMap (content unknown at render time) is used.
*/}}
{{- define "gpu-device-plugin.mayUseMIG" -}}
{{- if not (kindIs "invalid" .Values.migStrategy) }}
{{- if ne .Values.migStrategy "none" }}true{{ end }}
{{- else if .Values.config.name }}true
{{- else }}
{{- $mig := false }}
{{- range $key, $text := .Values.config.map }}
{{- $cfg := fromYaml $text }}
{{- if and (kindIs "map" $cfg) (kindIs "map" $cfg.flags) }}
{{- if ne (toString (default "none" $cfg.flags.migStrategy)) "none" }}{{ $mig = true }}{{ end }}
{{- end }}
{{- end }}
{{- if $mig }}true{{ end }}
{{- end }}
{{- end }}

{{/* The config key the plugin reads; "" when no config is used. Fails on a bad choice. */}}
{{- define "gpu-device-plugin.configKey" -}}
{{- $map := .Values.config.map }}
{{- if and .Values.config.name $map }}
{{- fail "Set either config.name (an existing ConfigMap) or config.map (inline configs), not both." }}
{{- end }}
{{- if $map }}
{{- if .Values.config.default }}
{{- if not (hasKey $map .Values.config.default) }}
{{- fail (printf "config.default %q is not a key of config.map (keys: %s)." .Values.config.default (keys $map | sortAlpha | join ", ")) }}
{{- end }}
{{- .Values.config.default }}
{{- else if hasKey $map "default" }}default
{{- else if eq (len $map) 1 }}
{{- keys $map | first }}
{{- else }}
{{- fail "A default config must be provided when more than one configuration is set in 'config.map'." }}
{{- end }}
{{- else if .Values.config.name }}
{{- default "default" .Values.config.default }}
{{- end }}
{{- end }}

{{/* Name of the ConfigMap mounted at /config; "" when none. */}}
{{- define "gpu-device-plugin.configMapName" -}}
{{- if .Values.config.map }}
{{- printf "%s-configs" (include "gpu-device-plugin.fullname" .) }}
{{- else if .Values.config.name }}
{{- .Values.config.name }}
{{- end }}
{{- end }}

{{/*
"true" when the container ends up with CAP_SYS_ADMIN in its bounding set, which is what
the NVIDIA runtime calls privileged. It refuses to start a container that sets
NVIDIA_MIG_MONITOR_DEVICES without it, so that variable is rendered only then.
*/}}
{{- define "gpu-device-plugin.hasSysAdmin" -}}
{{- $sc := .Values.securityContext }}
{{- if $sc }}
{{- $add := list }}
{{- if and (kindIs "map" $sc.capabilities) $sc.capabilities.add }}{{ $add = $sc.capabilities.add }}{{ end }}
{{- if or $sc.privileged (has "SYS_ADMIN" $add) (has "CAP_SYS_ADMIN" $add) }}true{{ end }}
{{- else if .Values.compatWithCPUManager }}true
{{- else if or (include "gpu-device-plugin.mayUseMIG" .) (include "gpu-device-plugin.usesVolumeMounts" .) }}true
{{- end }}
{{- end }}

{{/* Container securityContext: the user's verbatim, or hardened plus what options need. */}}
{{- define "gpu-device-plugin.securityContext" -}}
{{- if .Values.securityContext }}
{{- toYaml .Values.securityContext }}
{{- else if .Values.compatWithCPUManager }}
privileged: true
{{- else }}
{{- $sysAdmin := or (include "gpu-device-plugin.mayUseMIG" .) (include "gpu-device-plugin.usesVolumeMounts" .) }}
{{- if not $sysAdmin }}
allowPrivilegeEscalation: false
{{- end }}
readOnlyRootFilesystem: true
seccompProfile:
  type: RuntimeDefault
capabilities:
  drop: ["ALL"]
{{- if $sysAdmin }}
  add: ["SYS_ADMIN"]
{{- end }}
{{- end }}
{{- end }}

{{/*
"true" when the MPS control daemon is rendered and the plugin gets the MPS mounts:
mps.enabled true, or mps.enabled null and some config in config.map shares with MPS.
*/}}
{{- define "gpu-device-plugin.usesMPS" -}}
{{- if not (kindIs "invalid" .Values.mps.enabled) }}
{{- if .Values.mps.enabled }}true{{ end }}
{{- else }}
{{- $mps := false }}
{{- range $key, $text := .Values.config.map }}
{{- $cfg := fromYaml $text }}
{{- if and (kindIs "map" $cfg) (kindIs "map" $cfg.sharing) (kindIs "map" $cfg.sharing.mps) }}
{{- if $cfg.sharing.mps.resources }}{{ $mps = true }}{{ end }}
{{- end }}
{{- end }}
{{- if $mps }}true{{ end }}
{{- end }}
{{- end }}

{{/* Pod labels of the MPS control daemon: its own name, so neither DaemonSet selects the other's pods. */}}
{{- define "gpu-device-plugin.mpsSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-mps-control-daemon" (include "gpu-device-plugin.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
"true" when a node feature needs the Kubernetes API (the ServiceAccount, its RBAC and
a mounted token are rendered then): per-node config, or NodeFeature labels.
*/}}
{{- define "gpu-device-plugin.usesAPI" -}}
{{- if .Values.nodeConfig.enabled }}
{{- if not (include "gpu-device-plugin.configMapName" .) }}
{{- fail "nodeConfig.enabled needs named configs: set config.map (or config.name)." }}
{{- end }}true
{{- else if eq .Values.featureLabels.sink "nodefeature" }}true
{{- else if .Values.dra.enabled }}true
{{- end }}
{{- end }}
