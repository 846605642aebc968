{{/* Labels of one component; the selector is the name and component. */}}
{{- define "confab.labels" -}}
app.kubernetes.io/name: confab
app.kubernetes.io/part-of: confab
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- define "confab.selector" -}}
app.kubernetes.io/name: confab
app.kubernetes.io/component: {{ . }}
{{- end }}

{{- define "confab.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end }}

{{/* The pod's and the container's security contexts: non-root, read-only, nothing extra. */}}
{{- define "confab.podSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}
{{- define "confab.containerSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}

{{/* Secrets as files, read through the *_FILE variables. */}}
{{- define "confab.secretEnv" -}}
{{- range $name, $key := .Values.secretFiles }}
- name: {{ $name }}_FILE
  value: /run/secrets/confab/{{ $key }}
{{- end }}
{{- end }}

{{- define "confab.volumes" -}}
- name: tmp
  emptyDir: {sizeLimit: 256Mi}
- name: data
  emptyDir: {sizeLimit: 1Gi}
- name: secrets
  secret: {secretName: {{ .Values.secretName }}, optional: false}
- name: config-file
  secret: {secretName: {{ .Values.configFileSecret }}, optional: false}
{{- end }}
{{- define "confab.mounts" -}}
- {name: tmp, mountPath: /tmp}
- {name: data, mountPath: /var/lib/confab}
- {name: secrets, mountPath: /run/secrets/confab, readOnly: true}
- {name: config-file, mountPath: /etc/confab, readOnly: true}
{{- end }}

{{- define "confab.probe" -}}
httpGet: {path: {{ .path }}, port: http}
periodSeconds: {{ .periodSeconds }}
failureThreshold: {{ .failureThreshold }}
timeoutSeconds: {{ .timeoutSeconds }}
{{- end }}

{{/* clamd's container: its image's user, read-only, nothing extra. Takes .Values.clamav. */}}
{{- define "confab.clamavSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .user.uid }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}
