{{/*
Names are fixed, not derived from the release: the CRDs and the ClusterRoles are cluster-wide, so
Stasis is installed once per cluster, and the agent's admission policy names its ServiceAccount.
*/}}

{{/* Labels every object carries; "component" is operator or agent where it applies. */}}
{{- define "stasis.labels" -}}
app.kubernetes.io/name: stasis
app.kubernetes.io/part-of: stasis
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
{{- end }}

{{/* Pod selector of one component: stable across upgrades, so it names no version. */}}
{{- define "stasis.selector" -}}
app.kubernetes.io/name: stasis
app.kubernetes.io/component: {{ . }}
{{- end }}

{{- define "stasis.image" -}}
{{ .image.repository }}:{{ .image.tag | default .ctx.Chart.AppVersion }}{{ with .image.digest }}@{{ . }}{{ end }}
{{- end }}
