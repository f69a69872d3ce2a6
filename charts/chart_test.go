// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

// Package charts tests the Helm chart in modelarts-exporter/: helm lint, and
// helm template with the default values and with every toggle on, whose
// objects are checked against what the exporter expects. The rendered
// configuration and flags are handed to the exporter itself (--config.check),
// and where a case can run on loopback, the exporter is started with them and
// the rendered probes are run against it as the kubelet would.
package charts

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"

	"github.com/modelarts-exporter/modelarts_exporter/internal/testca"
	"github.com/modelarts-exporter/modelarts_exporter/internal/yamlpath"
)

const (
	chartDir = "modelarts-exporter"
	release  = "test"
	// The probes' user and password: quotes, $ and backquotes for the shell,
	// and long enough for base64 to wrap its line.
	probeUser, probePassword = "prometheus", `"quoted" $dollar ` + "`tick`" + ` 'single' password, longer than a base64 line`
	// Where the chart's configuration ends up, as the exporter's --config.file.
	configPath = "/etc/modelarts_exporter/config/modelarts_exporter.yml"
)

var tmpRoot string // removed after the tests

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chart_test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpRoot = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// tool finds a program on PATH; without it the test fails when CI requires
// the tools (MODELARTS_REQUIRE_TOOLS=1) and is skipped otherwise.
func tool(t *testing.T, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("MODELARTS_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s is not on PATH and MODELARTS_REQUIRE_TOOLS=1: %s", name, install)
	}
	t.Skipf("%s is not on PATH (%s); skipping", name, install)
	return ""
}

func helmBinary(t *testing.T) string {
	return tool(t, "helm", `run make tools and export PATH="$(go env GOPATH)/bin:$PATH"`)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// exporterBinary builds the exporter once for all tests.
func exporterBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(tmpRoot, "modelarts_exporter")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// helm runs helm on the chart with the values (YAML, none when empty).
func helm(t *testing.T, values string, args ...string) (stdout string, err error) {
	t.Helper()
	if values != "" {
		// Not in t.TempDir(): helm splits -f at commas, which test names hold.
		f, err := os.CreateTemp(tmpRoot, "values*.yaml")
		if err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
		if err := os.WriteFile(f.Name(), []byte(values), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-f", f.Name())
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

// render returns the objects helm template makes of the values, by kind.
func render(t *testing.T, values string) map[string]map[string]any {
	t.Helper()
	if out, err := helm(t, values, "lint", "--strict", chartDir); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := helm(t, values, "template", release, chartDir)
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]map[string]any{}
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decoding helm template's output: %v", err)
		}
		if obj == nil {
			continue
		}
		kind, _ := obj["kind"].(string)
		if _, dup := objs[kind]; dup {
			t.Fatalf("a second %s", kind)
		}
		objs[kind] = obj
	}
	return objs
}

// get walks a decoded YAML value: keys for maps, indices for lists.
var get = yamlpath.Get

// A chart case: values, what helm template must make of them, and the
// contents of the Secrets and ConfigMaps they name, which exist in the
// cluster, not in the chart.
type chartCase struct {
	name       string
	values     string
	kinds      []string
	secrets    map[string]map[string]string
	configMaps map[string]map[string]string
	// live: start the exporter with the rendered flags and files, and run the
	// rendered probes against it.
	live bool
}

// A configuration with AK/SK and password projects whose secrets are files
// of the credentials Secret. The endpoints are a closed port: nothing here
// may reach a cloud, and the probes do not need it.
const fileConfig = `
config:
  global:
    concurrency: 4
    min_refresh_interval: 30s
  projects:
    - name: aksk
      region: eu-de
      project_id: "0123456789abcdef0123456789abcdef"
      modelarts_endpoint: http://127.0.0.1:1
      iam_endpoint: http://127.0.0.1:1
      auth:
        access_key: REPLACEWITHACCESSKEY
        secret_key_file: /etc/modelarts_exporter/secrets/secret_key
      images:
        - 11111111-2222-4333-8444-555555555555
    - name: password
      cloud: huaweicloud
      region: cn-north-4
      modelarts_endpoint: http://127.0.0.1:1
      iam_endpoint: http://127.0.0.1:1
      auth:
        domain_name: example
        username: exporter
        password_file: /etc/modelarts_exporter/secrets/password
      discovery:
        type: DEDICATED
credentials:
  existingSecret: modelarts-credentials
`

func cases(t *testing.T) []chartCase {
	credentials := map[string]string{"secret_key": "dummy-secret-key", "password": "dummy-password"}
	web := webConfigSecret(t)
	probe := map[string]string{"user": probeUser, "pass": probePassword}
	return []chartCase{
		{
			name:  "default values",
			kinds: []string{"ConfigMap", "Deployment", "Service"},
		},
		{
			name:   "existing ConfigMap",
			values: "existingConfigMap: my-modelarts-config\n",
			kinds:  []string{"Deployment", "Service"},
			configMaps: map[string]map[string]string{"my-modelarts-config": {"modelarts_exporter.yml": `
projects:
  - name: prod
    region: eu-de
    project_id: "0123456789abcdef0123456789abcdef"
    auth:
      credentials_from: ecs_metadata
    discovery: {}
`}},
		},
		{
			name: "every toggle",
			values: fileConfig + `
replicas: 2
image:
  tag: v9.9.9
  pullSecrets: [regcred]
webConfig:
  existingSecret: modelarts-web
  tls: true
  basicAuth:
    enabled: true
    existingSecret: modelarts-probe
    usernameKey: user
    passwordKey: pass
extraArgs: [--log.level=debug, --web.enable-lifecycle, --scrape.timeout-offset=1s]
service:
  port: 8080
  annotations: {example.com/owner: ml-platform}
serviceMonitor:
  enabled: true
  labels: {release: kube-prometheus-stack}
  interval: 2m
  scrapeTimeout: 50s
  relabelings:
    - targetLabel: cluster
      replacement: eu-de-1
  metricRelabelings:
    - action: labeldrop
      regex: pod
  tlsConfig:
    insecureSkipVerify: true
prometheusRule:
  enabled: true
  labels: {release: kube-prometheus-stack}
podAnnotations: {example.com/team: ml}
podLabels: {team: ml}
nodeSelector: {kubernetes.io/os: linux}
tolerations: [{key: dedicated, operator: Equal, value: monitoring, effect: NoSchedule}]
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector: {matchLabels: {app.kubernetes.io/name: modelarts-exporter}}
`,
			kinds: []string{"ConfigMap", "Deployment", "PrometheusRule", "Service", "ServiceMonitor"},
			secrets: map[string]map[string]string{
				"modelarts-credentials": credentials, "modelarts-web": web, "modelarts-probe": probe,
			},
			live: true,
		},
		{
			// The probes' password from the web configuration's own Secret, over HTTP.
			name: "basic auth without TLS",
			values: fileConfig + `
webConfig:
  existingSecret: modelarts-web
  basicAuth:
    enabled: true
`,
			kinds: []string{"ConfigMap", "Deployment", "Service"},
			secrets: map[string]map[string]string{
				"modelarts-credentials": credentials,
				"modelarts-web": {
					"web-config.yml": webConfigFile(t, false), "username": probeUser, "password": probePassword,
				},
			},
			live: true,
		},
		{
			name: "TLS without basic auth",
			values: fileConfig + `
webConfig:
  existingSecret: modelarts-web
  tls: true
serviceMonitor:
  enabled: true
`,
			kinds: []string{"ConfigMap", "Deployment", "Service", "ServiceMonitor"},
			secrets: map[string]map[string]string{
				"modelarts-credentials": credentials,
				"modelarts-web": {
					"web-config.yml": "tls_server_config:\n  cert_file: /etc/modelarts_exporter/web/tls.crt\n  key_file: /etc/modelarts_exporter/web/tls.key\n",
					"tls.crt":        web["tls.crt"], "tls.key": web["tls.key"],
				},
			},
			live: true,
		},
	}
}

func TestChart(t *testing.T) {
	helmBinary(t)
	for _, c := range cases(t) {
		t.Run(c.name, func(t *testing.T) {
			objs := render(t, c.values)
			kinds := slices.Sorted(func(yield func(string) bool) {
				for k := range objs {
					if !yield(k) {
						return
					}
				}
			})
			t.Logf("kinds rendered: %s", strings.Join(kinds, ", "))
			if !slices.Equal(kinds, c.kinds) {
				t.Fatalf("kinds %v, want %v", kinds, c.kinds)
			}
			checkObjects(t, objs)
			pod := newPodFiles(t, objs, c)
			checkConfiguration(t, pod)
			if c.live {
				checkLive(t, pod, objs["ServiceMonitor"], c.secrets)
			}
		})
	}
}

// checkObjects checks what must hold for every set of values: the security
// context, the ports and names that tie the objects together, the probes'
// paths and the memory limit the Go runtime is given.
func checkObjects(t *testing.T, objs map[string]map[string]any) {
	t.Helper()
	dep, svc := objs["Deployment"], objs["Service"]
	pod := get(dep, "spec", "template", "spec")
	c := get(pod, "containers", 0)
	checks := []struct {
		what      string
		got, want any
	}{
		{"pod runAsNonRoot", get(pod, "securityContext", "runAsNonRoot"), true},
		{"pod seccompProfile", get(pod, "securityContext", "seccompProfile", "type"), "RuntimeDefault"},
		{"container runAsNonRoot", get(c, "securityContext", "runAsNonRoot"), true},
		{"readOnlyRootFilesystem", get(c, "securityContext", "readOnlyRootFilesystem"), true},
		{"allowPrivilegeEscalation", get(c, "securityContext", "allowPrivilegeEscalation"), false},
		{"capabilities.drop", get(c, "securityContext", "capabilities", "drop"), []any{"ALL"}},
		{"automountServiceAccountToken", get(pod, "automountServiceAccountToken"), false},
		{"container port", get(c, "ports", 0), map[string]any{"name": "http", "containerPort": 9713, "protocol": "TCP"}},
		{"Service targetPort", get(svc, "spec", "ports", 0, "targetPort"), "http"},
		{"Deployment selector", get(dep, "spec", "selector", "matchLabels"), get(svc, "spec", "selector")},
		{"GOMEMLIMIT", get(c, "env", 0), map[string]any{"name": "GOMEMLIMIT", "valueFrom": map[string]any{"resourceFieldRef": map[string]any{"resource": "limits.memory"}}}},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s: %v, want %v", ch.what, ch.got, ch.want)
		}
	}
	if get(c, "resources", "limits", "memory") == nil || get(c, "resources", "requests", "memory") == nil {
		t.Error("no memory request or limit: GOMEMLIMIT would be the node's memory")
	}
	podLabels, _ := get(dep, "spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range get(svc, "spec", "selector").(map[string]any) {
		if podLabels[k] != v {
			t.Errorf("the Service selects %s=%v, the pod is labelled %v", k, v, podLabels[k])
		}
	}
	for probe, path := range map[string]string{"livenessProbe": "/-/healthy", "readinessProbe": "/-/ready"} {
		p := get(c, probe)
		if got := get(p, "httpGet", "path"); got != nil {
			if got != path || get(p, "httpGet", "port") != "http" {
				t.Errorf("%s: httpGet %v, want path %s on port http", probe, get(p, "httpGet"), path)
			}
			continue
		}
		if get(p, "tcpSocket") != nil {
			if get(p, "tcpSocket", "port") != "http" {
				t.Errorf("%s: tcpSocket %v, want port http", probe, get(p, "tcpSocket"))
			}
			continue
		}
		script, _ := get(p, "exec", "command", 2).(string)
		if !strings.Contains(script, ":9713"+path) {
			t.Errorf("%s: %v does not ask for %s on port 9713", probe, get(p, "exec", "command"), path)
		}
	}

	if sm := objs["ServiceMonitor"]; sm != nil {
		ep := get(sm, "spec", "endpoints", 0)
		checks := []struct {
			what      string
			got, want any
		}{
			{"ServiceMonitor port", get(ep, "port"), get(svc, "spec", "ports", 0, "name")},
			{"ServiceMonitor path", get(ep, "path"), "/metrics"},
			{"ServiceMonitor selector", get(sm, "spec", "selector", "matchLabels"), get(svc, "spec", "selector")},
			// The alerts select job="modelarts_exporter".
			{"ServiceMonitor job", get(ep, "relabelings", 0), map[string]any{"action": "replace", "targetLabel": "job", "replacement": "modelarts_exporter"}},
		}
		for _, ch := range checks {
			if !reflect.DeepEqual(ch.got, ch.want) {
				t.Errorf("%s: %v, want %v", ch.what, ch.got, ch.want)
			}
		}
	}
	if rule := objs["PrometheusRule"]; rule != nil {
		var alerts map[string]any
		text, err := os.ReadFile(filepath.Join(chartDir, "files", "prometheus-alerts.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(text, &alerts); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(get(rule, "spec"), alerts) {
			t.Error("the PrometheusRule's spec is not files/prometheus-alerts.yaml")
		}
		if !strings.Contains(string(text), `job="modelarts_exporter"`) {
			t.Error(`the alerts do not select job="modelarts_exporter", the ServiceMonitor's job`)
		}
	}
}

// podFiles is what the exporter's container would see, laid out under root:
// each volume mounted at root+mountPath, filled from the rendered ConfigMap
// or the case's Secrets and ConfigMaps as the kubelet fills it.
type podFiles struct {
	root      string
	container map[string]any
	// local maps every mount path in the pod to its place under root.
	local *strings.Replacer
}

func newPodFiles(t *testing.T, objs map[string]map[string]any, c chartCase) *podFiles {
	t.Helper()
	root, err := os.MkdirTemp(tmpRoot, "pod")
	if err != nil {
		t.Fatal(err)
	}
	p := &podFiles{root: root, container: get(objs["Deployment"], "spec", "template", "spec", "containers", 0).(map[string]any)}
	configMaps := maps.Clone(c.configMaps)
	if cm := objs["ConfigMap"]; cm != nil {
		data := map[string]string{}
		for k, v := range get(cm, "data").(map[string]any) {
			data[k] = v.(string)
		}
		if configMaps == nil {
			configMaps = map[string]map[string]string{}
		}
		configMaps[get(cm, "metadata", "name").(string)] = data
	}
	volumes := map[string]map[string]string{} // volume name → file name → content
	for _, v := range get(objs["Deployment"], "spec", "template", "spec", "volumes").([]any) {
		var data map[string]string
		var ok bool
		switch {
		case get(v, "configMap") != nil:
			data, ok = configMaps[get(v, "configMap", "name").(string)]
		case get(v, "secret") != nil:
			data, ok = c.secrets[get(v, "secret", "secretName").(string)]
		}
		if !ok {
			t.Fatalf("volume %v: no such ConfigMap or Secret in this case", v)
		}
		files := data
		if items, _ := get(v, "configMap", "items").([]any); items != nil {
			files = itemFiles(t, items, data)
		}
		if items, _ := get(v, "secret", "items").([]any); items != nil {
			files = itemFiles(t, items, data)
		}
		volumes[get(v, "name").(string)] = files
	}
	var pairs []string
	for _, m := range get(p.container, "volumeMounts").([]any) {
		mountPath := get(m, "mountPath").(string)
		dir := filepath.Join(root, mountPath)
		pairs = append(pairs, mountPath+"/", dir+"/")
		files, ok := volumes[get(m, "name").(string)]
		if !ok {
			t.Fatalf("mount %v: no such volume", m)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			p.write(t, filepath.Join(dir, name), content)
		}
	}
	p.local = strings.NewReplacer(pairs...)
	// Files refer to each other by their paths in the pod.
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil {
			err = os.WriteFile(path, []byte(p.local.Replace(string(b))), 0o600)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// itemFiles applies a volume's items: only the keys listed, at their paths.
func itemFiles(t *testing.T, items []any, data map[string]string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, it := range items {
		content, ok := data[get(it, "key").(string)]
		if !ok {
			t.Fatalf("item %v: no such key", it)
		}
		files[get(it, "path").(string)] = content
	}
	return files
}

func (p *podFiles) write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// args are the container's arguments with the pod's paths made local.
func (p *podFiles) args(t *testing.T) []string {
	t.Helper()
	var args []string
	for _, a := range get(p.container, "args").([]any) {
		args = append(args, p.local.Replace(a.(string)))
	}
	return args
}

// checkConfiguration hands the rendered flags and configuration to the
// exporter: --config.check exits 0 only when every flag is known and the
// configuration, with the files it names, is valid.
func checkConfiguration(t *testing.T, p *podFiles) {
	t.Helper()
	args := p.args(t)
	if !slices.Contains(args, "--config.file="+p.local.Replace(configPath)) {
		t.Fatalf("args %q: no --config.file=%s", args, configPath)
	}
	for _, a := range args {
		if f, ok := strings.CutPrefix(a, "--web.config.file="); ok {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("--web.config.file: %v", err)
			}
		}
	}
	out, err := exec.Command(exporterBinary(t), append(args, "--config.check")...).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("is valid")) {
		t.Fatalf("modelarts_exporter %s --config.check: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// checkLive starts the exporter as the pod would and runs the rendered
// probes against it: both succeed once it is up, and with basic auth a wrong
// password makes them fail. A ServiceMonitor's scrape (scheme, path, basic
// auth from its Secret) must get the metrics.
func checkLive(t *testing.T, p *podFiles, sm map[string]any, secrets map[string]map[string]string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	_ = l.Close()
	args := p.args(t)
	i := slices.Index(args, "--web.listen-address=:9713")
	if i < 0 {
		t.Fatalf("args %q: no --web.listen-address=:9713", args)
	}
	args[i] = "--web.listen-address=127.0.0.1:" + port

	cmd := exec.Command(exporterBinary(t), args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("exporter log:\n%s", log.String())
		}
	}()

	readiness, liveness := get(p.container, "readinessProbe"), get(p.container, "livenessProbe")
	deadline := time.Now().Add(20 * time.Second)
	for err = p.probe(t, readiness, port); err != nil; err = p.probe(t, readiness, port) {
		if time.Now().After(deadline) {
			t.Fatalf("readiness probe: still failing after 20s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := p.probe(t, liveness, port); err != nil {
		t.Fatalf("liveness probe: %v", err)
	}
	if sm != nil {
		ep := get(sm, "spec", "endpoints", 0)
		scheme, _ := get(ep, "scheme").(string)
		var user, password string
		if ba := get(ep, "basicAuth"); ba != nil {
			user = secrets[get(ba, "username", "name").(string)][get(ba, "username", "key").(string)]
			password = secrets[get(ba, "password", "name").(string)][get(ba, "password", "key").(string)]
		}
		url := fmt.Sprintf("%s://127.0.0.1:%s%s", cmp.Or(scheme, "http"), port, get(ep, "path"))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := httpGet(ctx, url, user, password); err != nil {
			t.Errorf("the ServiceMonitor's scrape: %v", err)
		}
	}
	if get(readiness, "exec") == nil {
		return
	}
	p.write(t, filepath.Join(p.root, "etc/modelarts_exporter/probe/password"), "wrong-password")
	for name, pr := range map[string]any{"readiness": readiness, "liveness": liveness} {
		if err := p.probe(t, pr, port); err == nil {
			t.Errorf("%s probe: succeeds with a wrong password", name)
		}
	}
}

// httpGet asks for url as the kubelet and Prometheus would here: without
// checking the certificate, with basic auth when user is set; 200-399 pass.
func httpGet(ctx context.Context, url, user, password string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// probe runs a rendered probe as the kubelet would, against the exporter on
// 127.0.0.1:port: httpGet, tcpSocket, or exec with busybox's applets
// standing for the image's (and nothing else on PATH, as in the image).
func (p *podFiles) probe(t *testing.T, probe any, port string) error {
	t.Helper()
	timeout := time.Duration(get(probe, "timeoutSeconds").(int)) * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if hg := get(probe, "httpGet"); hg != nil {
		if get(hg, "port") != "http" {
			return fmt.Errorf("port %v, want http (9713)", get(hg, "port"))
		}
		return httpGet(ctx, fmt.Sprintf("%s://127.0.0.1:%s%s", strings.ToLower(get(hg, "scheme").(string)), port, get(hg, "path")), "", "")
	}
	if ts := get(probe, "tcpSocket"); ts != nil {
		if get(ts, "port") != "http" {
			return fmt.Errorf("port %v, want http (9713)", get(ts, "port"))
		}
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:"+port)
		if err == nil {
			_ = conn.Close()
		}
		return err
	}
	command := get(probe, "exec", "command").([]any)
	if len(command) != 3 || command[0] != "/bin/sh" || command[1] != "-c" {
		return fmt.Errorf("exec %v: want /bin/sh -c SCRIPT", command)
	}
	script := strings.ReplaceAll(p.local.Replace(command[2].(string)), "127.0.0.1:9713/", "127.0.0.1:"+port+"/")
	cmd := exec.CommandContext(ctx, busyboxApplets(t)+"/sh", "-c", script)
	cmd.Env = []string{"PATH=" + busyboxApplets(t)}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("exec probe: %v: %s", err, out)
	}
	return nil
}

var (
	appletsOnce sync.Once
	appletsDir  string
)

// busyboxApplets returns a directory holding busybox's sh, wget, base64, tr
// and cat, the programs of the image (quay.io/prometheus/busybox) the exec
// probes use, and nothing else.
func busyboxApplets(t *testing.T) string {
	t.Helper()
	busybox := tool(t, "busybox", "apt-get install busybox")
	appletsOnce.Do(func() {
		appletsDir = filepath.Join(tmpRoot, "busybox")
		if err := os.Mkdir(appletsDir, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, applet := range []string{"sh", "wget", "base64", "tr", "cat", "printf"} {
			if err := os.Symlink(busybox, filepath.Join(appletsDir, applet)); err != nil {
				t.Fatal(err)
			}
		}
	})
	return appletsDir
}

// webConfigSecret is a web configuration Secret with TLS (a certificate for
// 127.0.0.1 from a test CA) and basic auth for the probes' user.
func webConfigSecret(t *testing.T) map[string]string {
	t.Helper()
	ca := testca.New(t, t.TempDir())
	secret := map[string]string{"web-config.yml": webConfigFile(t, true)}
	for name, path := range map[string]string{"tls.crt": ca.CertFile, "tls.key": ca.KeyFile} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		secret[name] = string(b)
	}
	return secret
}

// webConfigFile is exporter-toolkit's web configuration with basic auth for
// the probes' user, and TLS from the Secret's tls.crt and tls.key.
func webConfigFile(t *testing.T, withTLS bool) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(probePassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("basic_auth_users:\n  %s: %s\n", probeUser, hash)
	if withTLS {
		text += "tls_server_config:\n  cert_file: /etc/modelarts_exporter/web/tls.crt\n  key_file: /etc/modelarts_exporter/web/tls.key\n"
	}
	return text
}

// TestChartRefusesMistakes: a misspelt value, a flag the chart owns and basic
// auth without its Secret fail helm template with a message that says what to
// fix.
func TestChartRefusesMistakes(t *testing.T) {
	helmBinary(t)
	for _, c := range []struct{ values, want string }{
		{"replicaCont: 2\n", "additional properties 'replicaCont' not allowed"},
		{"serviceMonitor:\n  enable: true\n", "additional properties 'enable' not allowed"},
		{"image:\n  pullPolicy: Sometimes\n", "pullPolicy"},
		{"extraArgs: [--config.file=/tmp/x.yml]\n", "extraArgs: --config.file=/tmp/x.yml is set by the chart"},
		{"webConfig:\n  basicAuth:\n    enabled: true\n", "webConfig.basicAuth.enabled needs webConfig.basicAuth.existingSecret"},
	} {
		_, err := helm(t, c.values, "template", release, chartDir)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("values %q: error %v, want one containing %q", c.values, err, c.want)
		}
	}
}

// TestChartHasNoGoFiles: the chart directory is packaged as it is; the tests
// stay out of it (and .helmignore keeps them out should one slip in).
func TestChartHasNoGoFiles(t *testing.T) {
	err := filepath.WalkDir(chartDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".go") {
			t.Errorf("%s: Go files belong in charts/, not in the chart", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ignore, err := os.ReadFile(filepath.Join(chartDir, ".helmignore"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(string(ignore), "\n"), "*.go") {
		t.Error(".helmignore does not list *.go")
	}
}

// TestReadmeValues: the chart README's values table has a row for every key
// of values.yaml and no other.
func TestReadmeValues(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(text, &values); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(valueKeys("", values)))
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(readme), "\n## Values\n")
	table, _, _ = strings.Cut(table, "\n## ")
	var got []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z.]+)` \\|").FindAllStringSubmatch(table, -1) {
		got = append(got, m[1])
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("README.md's values table lists %v,\nvalues.yaml has %v", got, want)
	}
}

// valueKeys lists the keys of values, down to the leaves, except for the
// objects the README describes as a whole.
func valueKeys(prefix string, values map[string]any) []string {
	var keys []string
	for k, v := range values {
		key := prefix + k
		sub, ok := v.(map[string]any)
		if whole := []string{"config", "podSecurityContext", "securityContext", "resources"}; ok && len(sub) > 0 && !slices.Contains(whole, key) {
			keys = append(keys, valueKeys(key+".", sub)...)
			continue
		}
		keys = append(keys, key)
	}
	return keys
}
