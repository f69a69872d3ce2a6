// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// one runs an instant query that must return exactly one sample.
func (s *stack) one(expr string) (*model.Sample, error) {
	v, err := s.prom.query(s.ctx, expr)
	if err != nil {
		return nil, err
	}
	if len(v) != 1 {
		return nil, fmt.Errorf("%s: %d series, want 1: %v", expr, len(v), v)
	}
	return v[0], nil
}

// expectValue checks that expr is one sample with value want.
func (s *stack) expectValue(expr string, want float64) error {
	smp, err := s.one(expr)
	if err != nil {
		return err
	}
	if got := float64(smp.Value); math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
		return fmt.Errorf("%s = %v, want %v", expr, got, want)
	}
	return nil
}

// expectAbsent checks that expr returns nothing.
func (s *stack) expectAbsent(expr string) error {
	return expectNone(s.ctx, s.prom, expr)
}

// checkSeries compares what arrived in Prometheus with the simulator's images.
func (s *stack) checkSeries(t *testing.T) {
	run(t, "exporter up and modelarts_up 1 for both projects", func(t *testing.T) {
		must(t, poll(s.ctx, "the exporter scraped with up 1 and both projects up", 30*time.Second, func() error {
			if err := s.expectValue(`up{job="`+jobName+`"}`, 1); err != nil {
				return err
			}
			for _, p := range []string{projectAKSK, projectToken} {
				if err := s.expectValue(`modelarts_up{project="`+p+`"}`, 1); err != nil {
					return err
				}
			}
			return nil
		}))
	})
	run(t, "every image's values equal the simulator's data", func(t *testing.T) {
		// The values are static: the first complete answer must be right, but
		// give Prometheus a few scrapes in case the answer is still arriving.
		checked := 0
		must(t, poll(s.ctx, "series match the simulator's images", 15*time.Second, func() error {
			checked = 0
			for _, p := range []struct {
				name string
				ids  []string
			}{{projectAKSK, akskImages()}, {projectToken, tokenImages}} {
				for _, id := range p.ids {
					n, err := s.checkImageSeries(p.name, id)
					if err != nil {
						return err
					}
					checked += n
				}
			}
			return nil
		}))
		t.Logf("%d values of %d images in 2 projects equal the simulator's data (status state set, labels, size*1024, create_at/update_at in seconds, info, up, not_found)",
			checked, len(akskImages())+len(tokenImages))
	})
	run(t, "API request counters, latency histogram and scrape durations arrive", func(t *testing.T) {
		for _, p := range []string{projectAKSK, projectToken} {
			_, err := s.one(fmt.Sprintf(`sum(modelarts_api_requests_total{project=%q,operation=~"ShowImage|ListImage",code="200"}) > 0`, p))
			must(t, err)
			_, err = s.one(fmt.Sprintf(`modelarts_scrape_duration_seconds{project=%q} > 0`, p))
			must(t, err)
		}
		_, err := s.one(`sum(modelarts_api_requests_total{project="` + projectToken + `",operation="CreateToken"}) > 0`)
		must(t, err)
		_, err = s.one(`sum(modelarts_api_request_duration_seconds_count{operation=~"ShowImage|ListImage"}) > 0`)
		must(t, err)
	})
}

// checkImageSeries checks the series of one image and returns how many
// values it compared.
func (s *stack) checkImageSeries(project, id string) (int, error) {
	sel := fmt.Sprintf(`project=%q,id=%q`, project, id)
	img, exists := s.images[id]
	if !exists {
		if err := s.expectValue(`modelarts_image_up{`+sel+`}`, 0); err != nil {
			return 0, err
		}
		if err := s.expectValue(`modelarts_image_not_found{`+sel+`}`, 1); err != nil {
			return 0, err
		}
		return 2, s.expectAbsent(`{__name__=~"modelarts_image_(status|size_bytes|info|created_timestamp_seconds|updated_timestamp_seconds)",` + sel + `}`)
	}
	status := strings.ToUpper(img.Status)
	states := float64(len(modelarts.Statuses))
	if !slices.Contains(modelarts.Statuses, status) {
		states++ // an undocumented status gets a series of its own
	}
	checks := map[string]float64{
		`modelarts_image_up{` + sel + `}`:                        1,
		`modelarts_image_not_found{` + sel + `}`:                 0,
		`modelarts_image_created_timestamp_seconds{` + sel + `}`: float64(img.CreateAt) / 1000,
		`modelarts_image_updated_timestamp_seconds{` + sel + `}`: float64(img.UpdateAt) / 1000,
		`count(modelarts_image_status{` + sel + `})`:             states,
		`sum(modelarts_image_status{` + sel + `})`:               1,
	}
	if img.Size != nil {
		checks[`modelarts_image_size_bytes{`+sel+`}`] = float64(*img.Size) * 1024
	} else if err := s.expectAbsent(`modelarts_image_size_bytes{` + sel + `}`); err != nil {
		return 0, err
	}
	for expr, want := range checks {
		if err := s.expectValue(expr, want); err != nil {
			return 0, err
		}
	}

	cur, err := s.one(`modelarts_image_status{` + sel + `} == 1`)
	if err != nil {
		return 0, err
	}
	if err := labelsEqual(cur.Metric, map[string]string{
		"status": status, "name": img.Name, "arch": img.Arch, "type": img.Type,
		"visibility": img.Visibility, "job": jobName, "instance": s.exporterAddr,
	}); err != nil {
		return 0, fmt.Errorf("image %s: modelarts_image_status == 1: %w", id, err)
	}
	info, err := s.one(`modelarts_image_info{` + sel + `}`)
	if err != nil {
		return 0, err
	}
	if err := labelsEqual(info.Metric, map[string]string{
		"name": img.Name, "tag": img.Tag, "swr_path": img.SWRPath, "namespace": img.Namespace,
		"service_type": img.ServiceType, "workspace_id": img.WorkspaceID,
	}); err != nil {
		return 0, fmt.Errorf("image %s: modelarts_image_info: %w", id, err)
	}
	return len(checks) + 2, nil
}

func labelsEqual(m model.Metric, want map[string]string) error {
	for k, v := range want {
		if got := string(m[model.LabelName(k)]); got != v {
			return fmt.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	return nil
}

// alertKey names an alert by what tells alerts apart here.
func alertKey(labels map[string]string) string {
	return labels["alertname"] + " " + labels["project"] + " " + labels["id"]
}

// checkBaselineAlerts waits until the alerts Prometheus has are exactly those
// the sample images call for, all firing, with fully rendered annotations.
func (s *stack) checkBaselineAlerts(t *testing.T) {
	want := map[string]bool{}
	for _, id := range akskImages() {
		img, exists := s.images[id]
		alert := ""
		switch status := strings.ToUpper(img.Status); {
		case !exists || status == modelarts.StatusDeleted:
			alert = "ModelArtsImageNotFound"
		case status == modelarts.StatusError || status == modelarts.StatusCreateFailed:
			alert = "ModelArtsImageFailed"
		case (status == modelarts.StatusCreating || status == modelarts.StatusInit) &&
			time.Since(time.UnixMilli(img.UpdateAt)) > time.Hour:
			alert = "ModelArtsImageStuck"
		}
		if alert != "" {
			want[alertKey(map[string]string{"alertname": alert, "project": projectAKSK, "id": id})] = true
		}
	}
	for _, id := range tokenImages {
		if st := strings.ToUpper(s.images[id].Status); st != modelarts.StatusActive && st != "FROZEN" {
			t.Fatalf("token project image %s is %s; the checks expect it quiet", id, st)
		}
	}
	var got map[string]bool
	must(t, poll(s.ctx, "exactly the expected alerts firing", 30*time.Second, func() error {
		alerts, err := s.prom.alerts(s.ctx)
		if err != nil {
			return err
		}
		got = map[string]bool{}
		for _, a := range alerts {
			if a.State != "firing" {
				return fmt.Errorf("%s is %s", alertKey(a.Labels), a.State)
			}
			for k, v := range a.Annotations {
				if noValue(v) {
					return stopPolling(fmt.Errorf("%s: annotation %s not rendered: %q", alertKey(a.Labels), k, v))
				}
			}
			got[alertKey(a.Labels)] = true
		}
		var missing, extra []string
		for k := range want {
			if !got[k] {
				missing = append(missing, k)
			}
		}
		for k := range got {
			if !want[k] {
				extra = append(extra, k)
			}
		}
		if len(missing)+len(extra) > 0 {
			return fmt.Errorf("missing %q, unexpected %q", missing, extra)
		}
		return nil
	}))
	t.Logf("exactly these %d alerts fire, annotations rendered: %s", len(want), strings.Join(sortedKeys(got), "; "))
}

// checkFlipToError turns an ACTIVE image to ERROR in the simulator and
// follows the alert into Prometheus, Alertmanager and a receiver, then back.
func (s *stack) checkFlipToError(t *testing.T) {
	id := modelartstest.SampleIDTrainingActive
	img := s.images[id]
	if img.Status != modelarts.StatusActive {
		t.Fatalf("image %s is %s, want ACTIVE before the flip", id, img.Status)
	}
	match := map[string]string{"alertname": "ModelArtsImageFailed", "project": projectAKSK, "id": id}
	must(t, s.setStatus(id, modelarts.StatusError))
	flipped := time.Now()
	t.Logf("PUT %s/-/sim/images/%s/status ERROR (%s)", s.simURL, id, img.Name)

	run(t, "status ERROR reaches Prometheus", func(t *testing.T) {
		expr := fmt.Sprintf(`modelarts_image_status{project=%q,id=%q,status="ERROR"}`, projectAKSK, id)
		must(t, poll(s.ctx, "status ERROR in Prometheus", 20*time.Second, func() error { return s.expectValue(expr, 1) }))
		t.Logf("%s is 1 after %.1fs", expr, time.Since(flipped).Seconds())
	})
	wantSummary := fmt.Sprintf("ModelArts image %s is in status ERROR", img.Name)
	run(t, "ModelArtsImageFailed fires in Prometheus with its summary", func(t *testing.T) {
		var pendingSeen bool
		must(t, poll(s.ctx, "ModelArtsImageFailed firing in Prometheus", 20*time.Second, func() error {
			a, err := s.findAlert(match)
			if err != nil {
				return err
			}
			pendingSeen = pendingSeen || a.State == "pending"
			if a.State != "firing" {
				return fmt.Errorf("state %s, want firing", a.State)
			}
			if a.Labels["severity"] != "critical" || a.Labels["status"] != "ERROR" || a.Annotations["summary"] != wantSummary {
				return stopPolling(fmt.Errorf("labels %v, annotations %v; want severity critical, status ERROR, summary %q", a.Labels, a.Annotations, wantSummary))
			}
			return nil
		}))
		t.Logf("firing %.1fs after the flip (pending seen: %v), summary %q", time.Since(flipped).Seconds(), pendingSeen, wantSummary)
	})
	run(t, "Alertmanager has it active, routed to the webhook", func(t *testing.T) {
		filters := []string{`alertname="ModelArtsImageFailed"`, `id="` + id + `"`, `project="` + projectAKSK + `"`}
		must(t, poll(s.ctx, "ModelArtsImageFailed in Alertmanager /api/v2/alerts", 20*time.Second, func() error {
			alerts, err := amAlerts(s.ctx, s.amURL, filters...)
			if err != nil {
				return err
			}
			if len(alerts) != 1 {
				return fmt.Errorf("%d alerts, want 1", len(alerts))
			}
			a := alerts[0]
			if a.Status.State != "active" || a.Annotations["summary"] != wantSummary || a.Labels["severity"] != "critical" ||
				len(a.Receivers) != 1 || a.Receivers[0].Name != "e2e-webhook" {
				return fmt.Errorf("state %s, labels %v, annotations %v, receivers %v; want active, critical, summary %q, receiver e2e-webhook",
					a.Status.State, a.Labels, a.Annotations, a.Receivers, wantSummary)
			}
			return nil
		}))
		t.Logf("active in Alertmanager %.1fs after the flip", time.Since(flipped).Seconds())
	})
	run(t, "Alertmanager notifies the webhook receiver", func(t *testing.T) {
		must(t, poll(s.ctx, "the notification at the webhook", 20*time.Second, func() error {
			for _, a := range s.hook.received(match) {
				if a.Status == "firing" {
					return nil
				}
			}
			return errors.New("no firing notification yet")
		}))
		t.Logf("notified %.1fs after the flip", time.Since(flipped).Seconds())
	})
	run(t, "back to ACTIVE the alert resolves in Prometheus", func(t *testing.T) {
		must(t, s.setStatus(id, modelarts.StatusActive))
		must(t, poll(s.ctx, "ModelArtsImageFailed resolved in Prometheus", 20*time.Second, func() error {
			a, err := s.findAlert(match)
			if err == nil {
				return fmt.Errorf("still %s, want gone", a.State)
			}
			if errors.Is(err, errNoAlert) {
				return nil
			}
			return err
		}))
	})
}

// checkAPIFaults makes the simulator refuse the token project's IAM
// credentials and throttle every ModelArts call.
func (s *stack) checkAPIFaults(t *testing.T) {
	for _, f := range []modelartstest.Fault{
		{Kind: modelartstest.FaultStatus, Operation: modelartstest.OpCreateToken, Status: http.StatusUnauthorized},
		{Kind: modelartstest.FaultStatus, Status: http.StatusTooManyRequests}, // ShowImage and ListImage
	} {
		must(t, doJSON(s.ctx, http.MethodPost, s.simURL+"/-/sim/faults", f, http.StatusCreated, nil))
	}
	must(t, doJSON(s.ctx, http.MethodPost, s.simURL+"/-/sim/tokens/expire", nil, http.StatusNoContent, nil))
	injected := time.Now()
	t.Log("faults: CreateToken answers 401 (tokens expired), ShowImage and ListImage answer 429")

	run(t, "refused credentials set modelarts_up 0, throttling keeps it 1 and counts 429s", func(t *testing.T) {
		must(t, poll(s.ctx, "modelarts_up", 20*time.Second, func() error {
			if err := s.expectValue(`modelarts_up{project="`+projectToken+`"}`, 0); err != nil {
				return err
			}
			if err := s.expectValue(`modelarts_up{project="`+projectAKSK+`"}`, 1); err != nil {
				return err
			}
			_, err := s.one(`sum(modelarts_api_requests_total{project="` + projectAKSK + `",code="429"}) > 0`)
			return err
		}))
	})
	run(t, "ModelArtsAPIDown, ModelArtsAPIThrottled and ModelArtsImageScrapeFailing fire, not the latter for the project that is down", func(t *testing.T) {
		want := map[string]bool{
			alertKey(map[string]string{"alertname": "ModelArtsAPIDown", "project": projectToken}):     true,
			alertKey(map[string]string{"alertname": "ModelArtsAPIThrottled", "project": projectAKSK}): true,
		}
		for _, id := range akskImages() {
			want[alertKey(map[string]string{"alertname": "ModelArtsImageScrapeFailing", "project": projectAKSK, "id": id})] = true
		}
		must(t, poll(s.ctx, "API alerts firing", 30*time.Second, func() error {
			alerts, err := s.prom.alerts(s.ctx)
			if err != nil {
				return err
			}
			var missing []string
			got := map[string]bool{}
			for _, a := range alerts {
				if a.Labels["alertname"] == "ModelArtsImageScrapeFailing" && a.Labels["project"] == projectToken {
					return stopPolling(fmt.Errorf("%s is %s although the project is down (ModelArtsAPIDown's case)", alertKey(a.Labels), a.State))
				}
				got[alertKey(a.Labels)] = a.State == "firing"
			}
			for _, k := range sortedKeys(want) {
				if !got[k] {
					missing = append(missing, k)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("not firing yet: %q", missing)
			}
			return nil
		}))
		t.Logf("%.1fs after the faults: ModelArtsAPIDown (%s), ModelArtsAPIThrottled (%s) and ModelArtsImageScrapeFailing for all %d images of %s fire; none for %s",
			time.Since(injected).Seconds(), projectToken, projectAKSK, len(akskImages()), projectAKSK, projectToken)
	})
}

// checkFailedReload breaks the exporter's configuration file and reloads.
func (s *stack) checkFailedReload(t *testing.T) {
	run(t, "a reload with an unknown field answers 500", func(t *testing.T) {
		good, err := os.ReadFile(s.exporterConfig)
		must(t, err)
		writeFile(t, s.exporterConfig, string(good)+"not_a_field: true\n")
		must(t, doJSON(s.ctx, http.MethodPost, s.exporterURL+"/-/reload", nil, http.StatusInternalServerError, nil))
	})
	run(t, "ModelArtsExporterConfigReloadFailed fires while the exporter keeps serving", func(t *testing.T) {
		must(t, poll(s.ctx, "ModelArtsExporterConfigReloadFailed firing", 20*time.Second, func() error {
			if err := s.expectValue(`modelarts_exporter_config_last_reload_successful{job="`+jobName+`"}`, 0); err != nil {
				return err
			}
			if err := s.expectFiring(map[string]string{"alertname": "ModelArtsExporterConfigReloadFailed", "instance": s.exporterAddr}); err != nil {
				return err
			}
			return s.expectValue(`up{job="`+jobName+`"}`, 1)
		}))
	})
}

// checkExporterDown stops the exporter.
func (s *stack) checkExporterDown(t *testing.T) {
	s.exporterProc.Stop()
	stopped := time.Now()
	must(t, poll(s.ctx, "ModelArtsExporterDown firing", 20*time.Second, func() error {
		if err := s.expectValue(`up{job="`+jobName+`"}`, 0); err != nil {
			return err
		}
		return s.expectFiring(map[string]string{"alertname": "ModelArtsExporterDown", "job": jobName, "instance": s.exporterAddr})
	}))
	t.Logf("up 0 and ModelArtsExporterDown firing %.1fs after the exporter stopped", time.Since(stopped).Seconds())
}

var errNoAlert = errors.New("no such alert")

// findAlert returns the one alert of Prometheus whose labels include match.
func (s *stack) findAlert(match map[string]string) (promAlert, error) {
	alerts, err := s.prom.alerts(s.ctx)
	if err != nil {
		return promAlert{}, err
	}
	var found []promAlert
	for _, a := range alerts {
		if hasLabels(a.Labels, match) {
			found = append(found, a)
		}
	}
	switch len(found) {
	case 0:
		return promAlert{}, fmt.Errorf("%w: %v", errNoAlert, match)
	case 1:
		return found[0], nil
	default:
		return promAlert{}, stopPolling(fmt.Errorf("%d alerts match %v, want 1: %v", len(found), match, found))
	}
}

// expectFiring checks that the one alert matching match fires.
func (s *stack) expectFiring(match map[string]string) error {
	a, err := s.findAlert(match)
	if err != nil {
		return err
	}
	if a.State != "firing" {
		return fmt.Errorf("%v: state %s, want firing", match, a.State)
	}
	return nil
}

func (s *stack) setStatus(id, status string) error {
	body := map[string]string{"status": status, "status_message": "set by the e2e test"}
	return doJSON(s.ctx, http.MethodPut, s.simURL+"/-/sim/images/"+id+"/status", body, http.StatusOK, nil)
}
