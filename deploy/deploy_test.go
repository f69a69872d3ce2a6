// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/modelarts-exporter/modelarts_exporter/config"
	"github.com/modelarts-exporter/modelarts_exporter/internal/yamlpath"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unmarshalYAML(t *testing.T, path string, out any) {
	t.Helper()
	if err := yaml.Unmarshal(readFile(t, path), out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// alertsFile is the rule file that alerts_test.yml tests; the mixin generates
// it and the other rule files from the same rules.
const alertsFile = "prometheus/alerts.yml"

// TestMixinIsGenerated compiles mixin/ with scripts/mixin.sh into a temporary
// directory: every file it generates must equal the committed one.
func TestMixinIsGenerated(t *testing.T) {
	if _, err := exec.LookPath("jsonnet"); err != nil {
		if os.Getenv("MODELARTS_REQUIRE_TOOLS") == "1" {
			t.Fatal("jsonnet is not on PATH (MODELARTS_REQUIRE_TOOLS=1): run make tools and put $(go env GOPATH)/bin on PATH")
		}
		t.Skip("jsonnet is not on PATH: run make tools to check that the files generated from mixin/ are up to date")
	}
	out := t.TempDir()
	if b, err := exec.Command("../scripts/mixin.sh", out).CombinedOutput(); err != nil {
		t.Fatalf("scripts/mixin.sh: %v\n%s", err, b)
	}
	n := 0
	err := filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(out, path)
		if err != nil {
			return err
		}
		n++
		want := readFile(t, path)
		got, err := os.ReadFile(filepath.Join("..", rel))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what mixin/ generates: run make mixin (and change mixin/, not the generated file)", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("scripts/mixin.sh generated no file")
	}
}

// TestRuleFilesAgree: the PrometheusRule and the chart carry the rules of
// alerts.yml, the file that alerts_test.yml tests.
func TestRuleFilesAgree(t *testing.T) {
	var alerts, rule, chart map[string]any
	unmarshalYAML(t, alertsFile, &alerts)
	unmarshalYAML(t, "kubernetes/prometheusrule.yml", &rule)
	unmarshalYAML(t, "../charts/modelarts-exporter/files/prometheus-alerts.yaml", &chart)
	if rule["apiVersion"] != "monitoring.coreos.com/v1" || rule["kind"] != "PrometheusRule" {
		t.Errorf("prometheusrule.yml: apiVersion %v kind %v", rule["apiVersion"], rule["kind"])
	}
	if alerts["groups"] == nil {
		t.Fatalf("%s has no groups", alertsFile)
	}
	if !reflect.DeepEqual(rule["spec"], alerts) {
		t.Errorf("the spec of kubernetes/prometheusrule.yml differs from %s", alertsFile)
	}
	if !reflect.DeepEqual(chart, alerts) {
		t.Errorf("the chart's files/prometheus-alerts.yaml differs from %s", alertsFile)
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func alertRules(t *testing.T) map[string]time.Duration {
	t.Helper()
	var rf ruleFile
	unmarshalYAML(t, alertsFile, &rf)
	alerts := map[string]time.Duration{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without alert name (recording rules belong elsewhere)", g.Name)
				continue
			}
			d, err := model.ParseDuration(r.For)
			if err != nil {
				t.Errorf("%s: for: %q: %v", r.Alert, r.For, err)
			}
			alerts[r.Alert] = time.Duration(d)
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			if !strings.Contains(r.Annotations["description"], "What to do:") {
				t.Errorf("%s: the description does not say what to do", r.Alert)
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatal("no alerts")
	}
	return alerts
}

// TestAlertsDoNotPageOnOneScrape: every `for:` spans at least five scrape
// intervals of the shipped scrape job.
func TestAlertsDoNotPageOnOneScrape(t *testing.T) {
	var cfg struct {
		ScrapeConfigs []struct {
			JobName        string `yaml:"job_name"`
			ScrapeInterval string `yaml:"scrape_interval"`
			ScrapeTimeout  string `yaml:"scrape_timeout"`
		} `yaml:"scrape_configs"`
	}
	unmarshalYAML(t, "prometheus/prometheus.yml", &cfg)
	var interval time.Duration
	for _, j := range cfg.ScrapeConfigs {
		if j.JobName != "modelarts_exporter" {
			continue
		}
		i, err1 := model.ParseDuration(j.ScrapeInterval)
		to, err2 := model.ParseDuration(j.ScrapeTimeout)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if to >= i {
			t.Errorf("scrape_timeout %s must be below scrape_interval %s", to, i)
		}
		interval = time.Duration(i)
	}
	if interval == 0 {
		t.Fatal("prometheus.yml: no job modelarts_exporter with a scrape_interval")
	}
	for name, d := range alertRules(t) {
		if d < 5*interval {
			t.Errorf("%s: for: %s is less than five scrapes of %s", name, d, interval)
		}
	}
}

// TestEveryAlertIsTested: alerts_test.yml shows every alert firing and every
// alert silent (an empty exp_alerts).
func TestEveryAlertIsTested(t *testing.T) {
	var tf struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	unmarshalYAML(t, "prometheus/alerts_test.yml", &tf)
	if !slices.Equal(tf.RuleFiles, []string{"alerts.yml"}) {
		t.Errorf("rule_files %q, want [alerts.yml]", tf.RuleFiles)
	}
	firing, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	alerts := alertRules(t)
	for name := range alerts {
		if !firing[name] {
			t.Errorf("%s: no test shows it firing", name)
		}
		if !silent[name] {
			t.Errorf("%s: no test shows it silent in a near miss", name)
		}
	}
	for name := range firing {
		if _, ok := alerts[name]; !ok {
			t.Errorf("alerts_test.yml tests %s, which alerts.yml does not have", name)
		}
	}
}

type panel struct {
	ID         int `json:"id"`
	Type       string
	Title      string
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// TestDashboard checks what Grafana needs to import the dashboard anywhere;
// make e2e runs its queries.
func TestDashboard(t *testing.T) {
	var d struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		ID         any    `json:"id"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
				Regex      string `json:"regex"`
				Hide       int    `json:"hide"`
			} `json:"list"`
		} `json:"templating"`
		Panels []panel `json:"panels"`
	}
	dec := json.NewDecoder(bytes.NewReader(readFile(t, "grafana/modelarts-images.json")))
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Error("trailing data after the dashboard")
	}
	if d.UID == "" || d.Title == "" || d.ID != nil {
		t.Errorf("uid %q title %q id %v: want a uid and a title, no id (Grafana assigns it)", d.UID, d.Title, d.ID)
	}
	// In this order: each query variable's query uses the ones before it.
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name+":"+v.Type)
		switch v.Name {
		case "cluster":
			if v.Hide != 2 {
				t.Errorf("variable cluster: hide %d, want 2 (hidden) in the single-cluster dashboard", v.Hide)
			}
		case "job":
			if !strings.Contains(v.Definition, `job="modelarts_exporter"`) {
				t.Errorf("variable job: %s does not use the mixin's selector job=\"modelarts_exporter\"", v.Definition)
			}
		case "image":
			checkImageVariable(t, v.Definition, v.Regex)
		}
	}
	if want := []string{"datasource:datasource", "cluster:query", "job:query", "instance:query", "project:query", "image:query"}; !slices.Equal(vars, want) {
		t.Errorf("template variables %v, want %v", vars, want)
	}
	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	ids := map[int]bool{}
	for _, p := range all {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: data source must be the ${datasource} variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no queries", p.Title)
		}
		for _, q := range p.Targets {
			for _, m := range []string{`cluster=~"$cluster"`, `job=~"$job"`, `instance=~"$instance"`} {
				if !strings.Contains(q.Expr, m) {
					t.Errorf("panel %q query %s: no %s in %s", p.Title, q.RefID, m, q.Expr)
				}
			}
			// Images are picked by id: names need not be unique.
			if strings.Contains(q.Expr, "modelarts_image_") && (!strings.Contains(q.Expr, `id=~"$image"`) || strings.Contains(q.Expr, "name=~")) {
				t.Errorf("panel %q query %s: images must be selected with id=~\"$image\" only: %s", p.Title, q.RefID, q.Expr)
			}
		}
	}
}

// checkImageVariable applies the image variable's regex the way Grafana does
// to a line of its query_result: the id must become the value, the name the
// text shown.
func checkImageVariable(t *testing.T, query, regex string) {
	t.Helper()
	if !strings.HasPrefix(query, "query_result(") || !strings.Contains(query, "modelarts_image_info") {
		t.Errorf("variable image: %s, want query_result(... modelarts_image_info ...)", query)
	}
	re, err := regexp.Compile(strings.TrimSuffix(strings.TrimPrefix(regex, "/"), "/"))
	if err != nil {
		t.Fatalf("variable image: regex %s: %v", regex, err)
	}
	m := re.FindStringSubmatch(`{id="4a1c-77",name="resnet50"} 1 1700000000000`)
	if m == nil || re.SubexpIndex("value") < 0 || re.SubexpIndex("text") < 0 ||
		m[re.SubexpIndex("value")] != "4a1c-77" || m[re.SubexpIndex("text")] != "resnet50" {
		t.Errorf("variable image: regex %s does not turn a query_result line into value=id, text=name: %q", regex, m)
	}
}

// manifests reads every Kubernetes object of kubernetes/, by kind.
func manifests(t *testing.T) map[string]map[string]any {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]map[string]any{}
	for _, f := range files {
		dec := yaml.NewDecoder(bytes.NewReader(readFile(t, f)))
		for {
			var obj map[string]any
			err := dec.Decode(&obj)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			kind, _ := obj["kind"].(string)
			if _, dup := objs[kind]; dup {
				t.Fatalf("%s: a second %s", f, kind)
			}
			objs[kind] = obj
		}
	}
	return objs
}

// get walks a decoded YAML value: keys for maps, indices for lists.
var get = yamlpath.Get

func TestKubernetesManifests(t *testing.T) {
	objs := manifests(t)
	for _, kind := range []string{"Deployment", "Service", "ConfigMap", "Secret", "ServiceMonitor", "PrometheusRule", "Kustomization"} {
		if objs[kind] == nil {
			t.Fatalf("no %s in deploy/kubernetes", kind)
		}
	}
	dep := objs["Deployment"]
	pod := get(dep, "spec", "template", "spec")
	c := get(pod, "containers", 0)
	checks := []struct {
		what string
		got  any
		want any
	}{
		{"pod runAsNonRoot", get(pod, "securityContext", "runAsNonRoot"), true},
		{"container runAsNonRoot", get(c, "securityContext", "runAsNonRoot"), true},
		{"readOnlyRootFilesystem", get(c, "securityContext", "readOnlyRootFilesystem"), true},
		{"allowPrivilegeEscalation", get(c, "securityContext", "allowPrivilegeEscalation"), false},
		{"capabilities.drop", get(c, "securityContext", "capabilities", "drop", 0), "ALL"},
		{"automountServiceAccountToken", get(pod, "automountServiceAccountToken"), false},
		{"containerPort", get(c, "ports", 0, "containerPort"), 9713},
		{"liveness path", get(c, "livenessProbe", "httpGet", "path"), "/-/healthy"},
		{"readiness path", get(c, "readinessProbe", "httpGet", "path"), "/-/ready"},
		{"liveness port", get(c, "livenessProbe", "httpGet", "port"), get(c, "ports", 0, "name")},
		{"readiness port", get(c, "readinessProbe", "httpGet", "port"), get(c, "ports", 0, "name")},
		{"Service targetPort", get(objs["Service"], "spec", "ports", 0, "targetPort"), get(c, "ports", 0, "name")},
		{"Service selector", get(objs["Service"], "spec", "selector"), get(dep, "spec", "template", "metadata", "labels")},
		{"ServiceMonitor port", get(objs["ServiceMonitor"], "spec", "endpoints", 0, "port"), get(objs["Service"], "spec", "ports", 0, "name")},
		{"ServiceMonitor selector", get(objs["ServiceMonitor"], "spec", "selector", "matchLabels"), get(objs["Service"], "metadata", "labels")},
		{"ServiceMonitor job", get(objs["ServiceMonitor"], "spec", "endpoints", 0, "relabelings", 0, "replacement"), "modelarts_exporter"},
		{"ConfigMap volume", get(pod, "volumes", 0, "configMap", "name"), get(objs["ConfigMap"], "metadata", "name")},
		{"Secret volume", get(pod, "volumes", 1, "secret", "secretName"), get(objs["Secret"], "metadata", "name")},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	for _, r := range []string{"requests", "limits"} {
		for _, res := range []string{"cpu", "memory"} {
			if get(c, "resources", r, res) == nil {
				t.Errorf("no resources.%s.%s", r, res)
			}
		}
	}

	// The kustomization lists every manifest but the Secret example.
	var listed []string
	for _, r := range get(objs["Kustomization"], "resources").([]any) {
		listed = append(listed, r.(string))
	}
	files, _ := filepath.Glob("kubernetes/*.yml")
	for _, f := range files {
		base := filepath.Base(f)
		if base == "kustomization.yml" || base == "secret_example.yml" {
			continue
		}
		if !slices.Contains(listed, base) {
			t.Errorf("kustomization.yml does not list %s", base)
		}
	}
}

// TestConfigMapConfiguration loads the ConfigMap's configuration as the pod
// would, with the Secret's keys as files at the mount path.
func TestConfigMapConfiguration(t *testing.T) {
	objs := manifests(t)
	cfgText, _ := get(objs["ConfigMap"], "data", "modelarts_exporter.yml").(string)
	if cfgText == "" {
		t.Fatal("the ConfigMap has no modelarts_exporter.yml")
	}
	c := get(objs["Deployment"], "spec", "template", "spec", "containers", 0)
	mounts := map[string]string{}
	for _, m := range get(c, "volumeMounts").([]any) {
		mounts[get(m, "name").(string)] = get(m, "mountPath").(string)
	}
	args := get(c, "args").([]any)
	wantArg := "--config.file=" + mounts["config"] + "/modelarts_exporter.yml"
	if !slices.Contains(args, any(wantArg)) {
		t.Errorf("args %v lack %s", args, wantArg)
	}

	dir := t.TempDir()
	secretDir := filepath.Join(dir, "secrets")
	if err := os.Mkdir(secretDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for k, v := range get(objs["Secret"], "stringData").(map[string]any) {
		if err := os.WriteFile(filepath.Join(secretDir, k), []byte(v.(string)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(cfgText, mounts["credentials"]+"/") {
		t.Fatalf("the configuration does not read its secret from the Secret's mount %s", mounts["credentials"])
	}
	cfgText = strings.ReplaceAll(cfgText, mounts["credentials"]+"/", secretDir+"/")
	if _, err := config.LoadReader(strings.NewReader(cfgText), dir); err != nil {
		t.Errorf("the ConfigMap's configuration: %v", err)
	}
}

// TestExampleConfiguration: the annotated example loads, and mentions every
// field of the configuration file, so that a new field cannot go undocumented.
func TestExampleConfiguration(t *testing.T) {
	const path = "modelarts_exporter.yml"
	if _, err := config.Load(path); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	text := string(readFile(t, path))
	for _, field := range yamlFields(reflect.TypeFor[config.Config]()) {
		if !regexp.MustCompile(`(?m)^[\s#-]*` + regexp.QuoteMeta(field) + `:`).MatchString(text) {
			t.Errorf("%s does not explain the field %q", path, field)
		}
	}
}

// yamlFields lists the YAML keys of a configuration type and of the structs
// of package config inside it.
func yamlFields(typ reflect.Type) []string {
	var out []string
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, name)
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() == typ.PkgPath() {
			out = append(out, yamlFields(ft)...)
		}
	}
	return out
}
