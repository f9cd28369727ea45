{{/*
Names, labels and the few paths every template must agree on. The driver name is not a value:
the plugin reports csi.oxide.computer in GetPluginInfo, and Kubernetes matches it exactly.
*/}}

{{- define "oxide-csi.driverName" -}}
csi.oxide.computer
{{- end }}

{{- define "oxide-csi.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "oxide-csi.fullname" -}}
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

{{- define "oxide-csi.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "oxide-csi.labels" -}}
helm.sh/chart: {{ include "oxide-csi.chart" . }}
app.kubernetes.io/name: {{ include "oxide-csi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: oxide-csi
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "controller"). */}}
{{- define "oxide-csi.selectorLabels" -}}
app.kubernetes.io/name: {{ include "oxide-csi.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "oxide-csi.componentLabels" -}}
{{ include "oxide-csi.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "oxide-csi.controller.fullname" -}}
{{- include "oxide-csi.suffixed" (dict "base" (include "oxide-csi.fullname" .) "suffix" "-controller") }}
{{- end }}

{{/*
Names with a suffix: the base is shortened first so that the suffix always survives and the
whole name stays a DNS-1123 label (63 characters), which Service names must be.
*/}}
{{- define "oxide-csi.suffixed" -}}
{{- $base := .base | trunc (int (sub 63 (len .suffix))) | trimSuffix "-" }}
{{- printf "%s%s" $base .suffix }}
{{- end }}

{{- define "oxide-csi.node.fullname" -}}
{{- include "oxide-csi.suffixed" (dict "base" (include "oxide-csi.fullname" .) "suffix" "-node") }}
{{- end }}

{{- define "oxide-csi.controller.serviceAccountName" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (include "oxide-csi.controller.fullname" .) .Values.controller.serviceAccount.name }}
{{- else }}
{{- required "controller.serviceAccount.name is required when controller.serviceAccount.create is false" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "oxide-csi.node.serviceAccountName" -}}
{{- if .Values.node.serviceAccount.create }}
{{- default (include "oxide-csi.node.fullname" .) .Values.node.serviceAccount.name }}
{{- else }}
{{- required "node.serviceAccount.name is required when node.serviceAccount.create is false" .Values.node.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret with host, token and project: the operator's, or the one the chart makes. */}}
{{- define "oxide-csi.secretName" -}}
{{- if .Values.oxide.existingSecret }}
{{- .Values.oxide.existingSecret }}
{{- else }}
{{- include "oxide-csi.suffixed" (dict "base" (include "oxide-csi.fullname" .) "suffix" "-oxide") }}
{{- end }}
{{- end }}

{{/* Whether the chart renders the Secret: only from credentials given in values. */}}
{{- define "oxide-csi.createSecret" -}}
{{- if and (not .Values.oxide.existingSecret) (or .Values.oxide.host .Values.oxide.token .Values.oxide.project) -}}
true
{{- end }}
{{- end }}

{{- define "oxide-csi.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "oxide-csi.sidecarImage" -}}
{{- printf "%s:%s" .repository .tag }}
{{- end }}

{{/*
The CSI socket. Inside every pod the plugin and its sidecars share one directory mounted at
/csi; on the node that directory is the kubelet's plugin directory for the driver, and the
registrar tells kubelet the host path.
*/}}
{{- define "oxide-csi.socketDir" -}}
/csi
{{- end }}

{{- define "oxide-csi.socketPath" -}}
/csi/csi.sock
{{- end }}

{{- define "oxide-csi.node.pluginDir" -}}
{{- printf "%s/plugins/%s" (trimSuffix "/" .Values.node.kubeletDir) (include "oxide-csi.driverName" .) }}
{{- end }}

{{- define "oxide-csi.node.registrationDir" -}}
{{- printf "%s/plugins_registry" (trimSuffix "/" .Values.node.kubeletDir) }}
{{- end }}

{{/* Security context of a sidecar: root (to reach the root-owned socket), nothing else. */}}
{{- define "oxide-csi.sidecarSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* Environment shared by the plugin in both modes. */}}
{{- define "oxide-csi.commonEnv" -}}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- end }}

{{/*
The group/version/kind the VolumeSnapshotClasses need; the external-snapshotter project's CRDs
serve it. Helm's --api-versions takes the same string.
*/}}
{{- define "oxide-csi.snapshotAPI" -}}
snapshot.storage.k8s.io/v1/VolumeSnapshotClass
{{- end }}

{{/*
Whether snapshots are on: "true" or "". `auto` (the default) follows the cluster: on only when
it serves the snapshot API (Helm's .Capabilities, which `helm template` fills from
--api-versions), so a fresh cluster without the CRDs installs cleanly.
*/}}
{{- define "oxide-csi.snapshotsEnabled" -}}
{{- $mode := toString .Values.snapshots.enabled -}}
{{- if eq $mode "true" -}}
true
{{- else if and (eq $mode "auto") (.Capabilities.APIVersions.Has (include "oxide-csi.snapshotAPI" .)) -}}
true
{{- end }}
{{- end }}

{{/* "true" when the controller trusts an extra CA bundle from a Secret or a ConfigMap. */}}
{{- define "oxide-csi.caBundle" -}}
{{- with .Values.oxide.caBundle }}{{ if or .secretName .configMapName }}true{{ end }}{{ end }}
{{- end }}

{{/*
Node affinity on the control-plane role labels, matched by key only (kubeadm and Talos label
"", k3s and RKE2 "true"). Call with (dict "keys" .Values.controlPlaneLabelKeys "on" true):
on a control-plane node (any key Exists: one term per key, and terms are ORed); "on" false:
on any other node (every key DoesNotExist, in one term: expressions are ANDed).
*/}}
{{- define "oxide-csi.controlPlaneNodeAffinity" -}}
requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  {{- if .on }}
  {{- range .keys }}
    - matchExpressions:
        - key: {{ . | quote }}
          operator: Exists
  {{- end }}
  {{- else }}
    - matchExpressions:
      {{- range .keys }}
        - key: {{ . | quote }}
          operator: DoesNotExist
      {{- end }}
  {{- end }}
{{- end }}

{{/*
The longest one power cycle can take, in seconds: the batch window (60 at most), the graceful
power-off wait when it is enabled (gracefulPowerOff.stopTimeout, after which the hard stop
follows), then the plugin's own bound of a cycle from the stop on (controller.attachCycleTimeout:
stop, attach/detach, start with its retries after 507; the wait for a turn under the cycle
budget is not part of it).
*/}}
{{- define "oxide-csi.cycleSeconds" -}}
{{- $graceful := 0 -}}
{{- if (.Values.gracefulPowerOff).enabled -}}
{{- $graceful = .Values.gracefulPowerOff.stopTimeout -}}
{{- end -}}
{{- add 60 $graceful .Values.controller.attachCycleTimeout -}}
{{- end }}

{{/*
The longest one ControllerPublish can keep the plugin busy: the worst case the policy allows
is a detach cycle of the volume's old instance, then the attach cycle of the new one.
*/}}
{{- define "oxide-csi.worstPublishSeconds" -}}
{{- mul 2 (include "oxide-csi.cycleSeconds" . | int) -}}
{{- end }}
