// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// one runs an instant query that must return exactly one sample.
func (e *e2e) one(ctx context.Context, expr string) (*model.Sample, error) {
	v, err := e.prom.query(ctx, expr)
	if err != nil {
		return nil, err
	}
	if len(v) != 1 {
		return nil, fmt.Errorf("%s: %d series, want 1: %v", expr, len(v), v)
	}
	return v[0], nil
}

// expectValue checks that expr is one sample with value want.
func (e *e2e) expectValue(ctx context.Context, expr string, want float64) error {
	s, err := e.one(ctx, expr)
	if err != nil {
		return err
	}
	if got := float64(s.Value); math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
		return fmt.Errorf("%s = %v, want %v", expr, got, want)
	}
	return nil
}

// expectAbsent checks that expr returns nothing.
func (e *e2e) expectAbsent(ctx context.Context, expr string) error {
	v, err := e.prom.query(ctx, expr)
	if err != nil {
		return err
	}
	if len(v) != 0 {
		return fmt.Errorf("%s: want no series, got %v", expr, v)
	}
	return nil
}

// checkSeries compares what arrived in Prometheus with the simulator's images.
func (e *e2e) checkSeries(ctx context.Context, images map[string]modelarts.Image) error {
	if err := poll(ctx, "the exporter scraped with up 1 and both projects up", 30*time.Second, func() error {
		if err := e.expectValue(ctx, `up{job="`+jobName+`"}`, 1); err != nil {
			return err
		}
		for _, p := range []string{projectAKSK, projectToken} {
			if err := e.expectValue(ctx, `modelarts_up{project="`+p+`"}`, 1); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	e.ok(`up{job="%s"} is 1 and modelarts_up is 1 for %s and %s`, jobName, projectAKSK, projectToken)

	// The values are static: the first complete answer must be right, but give
	// Prometheus a few scrapes in case the answer is still arriving.
	checked := 0
	err := poll(ctx, "series match the simulator's images", 15*time.Second, func() error {
		checked = 0
		for _, id := range akskImages() {
			n, err := e.checkImageSeries(ctx, projectAKSK, id, images)
			if err != nil {
				return err
			}
			checked += n
		}
		for _, id := range tokenImages {
			n, err := e.checkImageSeries(ctx, projectToken, id, images)
			if err != nil {
				return err
			}
			checked += n
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.ok("%d values of %d images in 2 projects equal the simulator's data (status state set, labels, size*1024, create_at/update_at in seconds, info, up, not_found)",
		checked, len(akskImages())+len(tokenImages))

	for _, p := range []string{projectAKSK, projectToken} {
		expr := fmt.Sprintf(`sum(modelarts_api_requests_total{project=%q,operation=~"ShowImage|ListImage",code="200"})`, p)
		s, err := e.one(ctx, expr)
		if err != nil {
			return err
		}
		if s.Value <= 0 {
			return fmt.Errorf("%s = %v, want > 0", expr, s.Value)
		}
		if _, err := e.one(ctx, fmt.Sprintf(`modelarts_scrape_duration_seconds{project=%q} > 0`, p)); err != nil {
			return err
		}
	}
	if _, err := e.one(ctx, `sum(modelarts_api_requests_total{project="`+projectToken+`",operation="CreateToken"}) > 0`); err != nil {
		return err
	}
	if _, err := e.one(ctx, `sum(modelarts_api_request_duration_seconds_count{operation=~"ShowImage|ListImage"}) > 0`); err != nil {
		return err
	}
	e.ok("API request counters (ModelArts 200s per project, CreateToken for the token project), latency histogram and scrape durations arrived")
	return nil
}

// checkImageSeries checks the series of one image and returns how many
// values it compared.
func (e *e2e) checkImageSeries(ctx context.Context, project, id string, images map[string]modelarts.Image) (int, error) {
	sel := fmt.Sprintf(`project=%q,id=%q`, project, id)
	img, exists := images[id]
	if !exists {
		if err := e.expectValue(ctx, `modelarts_image_up{`+sel+`}`, 0); err != nil {
			return 0, err
		}
		if err := e.expectValue(ctx, `modelarts_image_not_found{`+sel+`}`, 1); err != nil {
			return 0, err
		}
		return 2, e.expectAbsent(ctx, `{__name__=~"modelarts_image_(status|size_bytes|info|created_timestamp_seconds|updated_timestamp_seconds)",`+sel+`}`)
	}
	n := 0
	checks := []struct {
		expr string
		want float64
	}{
		{`modelarts_image_up{` + sel + `}`, 1},
		{`modelarts_image_not_found{` + sel + `}`, 0},
		{`modelarts_image_created_timestamp_seconds{` + sel + `}`, float64(img.CreateAt) / 1000},
		{`modelarts_image_updated_timestamp_seconds{` + sel + `}`, float64(img.UpdateAt) / 1000},
	}
	status := strings.ToUpper(img.Status)
	documented := slices.Contains(modelarts.Statuses, status)
	states := float64(len(modelarts.Statuses))
	if !documented {
		states++
	}
	checks = append(checks,
		struct {
			expr string
			want float64
		}{`count(modelarts_image_status{` + sel + `})`, states},
		struct {
			expr string
			want float64
		}{`sum(modelarts_image_status{` + sel + `})`, 1},
	)
	if img.Size != nil {
		checks = append(checks, struct {
			expr string
			want float64
		}{`modelarts_image_size_bytes{` + sel + `}`, float64(*img.Size) * 1024})
	} else if err := e.expectAbsent(ctx, `modelarts_image_size_bytes{`+sel+`}`); err != nil {
		return 0, err
	}
	for _, c := range checks {
		if err := e.expectValue(ctx, c.expr, c.want); err != nil {
			return 0, err
		}
		n++
	}

	cur, err := e.one(ctx, `modelarts_image_status{`+sel+`} == 1`)
	if err != nil {
		return 0, err
	}
	want := map[string]string{
		"status": status, "name": img.Name, "arch": img.Arch, "type": img.Type,
		"visibility": img.Visibility, "job": jobName, "instance": e.exporterAddr,
	}
	if err := labelsEqual(cur.Metric, want); err != nil {
		return 0, fmt.Errorf("image %s: modelarts_image_status == 1: %w", id, err)
	}
	info, err := e.one(ctx, `modelarts_image_info{`+sel+`}`)
	if err != nil {
		return 0, err
	}
	if err := labelsEqual(info.Metric, map[string]string{
		"name": img.Name, "tag": img.Tag, "swr_path": img.SWRPath, "namespace": img.Namespace,
		"service_type": img.ServiceType, "workspace_id": img.WorkspaceID,
	}); err != nil {
		return 0, fmt.Errorf("image %s: modelarts_image_info: %w", id, err)
	}
	return n + 2, nil
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
func (e *e2e) checkBaselineAlerts(ctx context.Context, images map[string]modelarts.Image) error {
	want := map[string]bool{}
	for _, id := range akskImages() {
		img, exists := images[id]
		switch status := strings.ToUpper(img.Status); {
		case !exists || status == modelarts.StatusDeleted:
			want[alertKey(map[string]string{"alertname": "ModelArtsImageNotFound", "project": projectAKSK, "id": id})] = true
		case status == modelarts.StatusError || status == modelarts.StatusCreateFailed:
			want[alertKey(map[string]string{"alertname": "ModelArtsImageFailed", "project": projectAKSK, "id": id})] = true
		case (status == modelarts.StatusCreating || status == modelarts.StatusInit) &&
			time.Since(time.UnixMilli(img.UpdateAt)) > time.Hour:
			want[alertKey(map[string]string{"alertname": "ModelArtsImageStuck", "project": projectAKSK, "id": id})] = true
		}
	}
	for _, id := range tokenImages {
		if s := strings.ToUpper(images[id].Status); s != modelarts.StatusActive && s != "FROZEN" {
			return fmt.Errorf("token project image %s is %s; the checks expect it quiet", id, s)
		}
	}
	var got map[string]bool
	err := poll(ctx, "exactly the expected alerts firing", 30*time.Second, func() error {
		alerts, err := e.prom.alerts(ctx)
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
	})
	if err != nil {
		return err
	}
	e.ok("exactly these %d alerts fire, annotations rendered: %s", len(want), strings.Join(sortedKeys(got), "; "))
	return nil
}

// checkFlipToError turns an ACTIVE image to ERROR in the simulator and
// follows the alert into Prometheus, Alertmanager and a receiver, then back.
func (e *e2e) checkFlipToError(ctx context.Context, images map[string]modelarts.Image) error {
	id := modelartstest.SampleIDTrainingActive
	img := images[id]
	if img.Status != modelarts.StatusActive {
		return fmt.Errorf("image %s is %s, want ACTIVE before the flip", id, img.Status)
	}
	match := map[string]string{"alertname": "ModelArtsImageFailed", "project": projectAKSK, "id": id}
	if err := e.setStatus(ctx, id, modelarts.StatusError); err != nil {
		return err
	}
	flipped := time.Now()
	e.logf("PUT %s/-/sim/images/%s/status ERROR (%s)", e.simURL, id, img.Name)

	sel := fmt.Sprintf(`project=%q,id=%q`, projectAKSK, id)
	if err := poll(ctx, "status ERROR in Prometheus", 20*time.Second, func() error {
		return e.expectValue(ctx, `modelarts_image_status{`+sel+`,status="ERROR"}`, 1)
	}); err != nil {
		return err
	}
	e.ok(`modelarts_image_status{%s,status="ERROR"} is 1 after %.1fs`, sel, time.Since(flipped).Seconds())

	wantSummary := fmt.Sprintf("ModelArts image %s is in status ERROR", img.Name)
	var pendingSeen bool
	if err := poll(ctx, "ModelArtsImageFailed firing in Prometheus", 20*time.Second, func() error {
		a, err := e.findAlert(ctx, match)
		if err != nil {
			return err
		}
		if a.State == "pending" {
			pendingSeen = true
		}
		if a.State != "firing" {
			return fmt.Errorf("state %s", a.State)
		}
		if a.Labels["severity"] != "critical" || a.Labels["status"] != "ERROR" || a.Annotations["summary"] != wantSummary {
			return stopPolling(fmt.Errorf("labels %v, annotations %v", a.Labels, a.Annotations))
		}
		return nil
	}); err != nil {
		return err
	}
	e.ok("ModelArtsImageFailed for %s firing in Prometheus %.1fs after the flip (pending seen: %v), summary %q",
		img.Name, time.Since(flipped).Seconds(), pendingSeen, wantSummary)

	filters := []string{`alertname="ModelArtsImageFailed"`, `id="` + id + `"`, `project="` + projectAKSK + `"`}
	if err := poll(ctx, "ModelArtsImageFailed in Alertmanager /api/v2/alerts", 20*time.Second, func() error {
		alerts, err := amAlerts(ctx, e.amURL, filters...)
		if err != nil {
			return err
		}
		if len(alerts) != 1 {
			return fmt.Errorf("%d alerts, want 1", len(alerts))
		}
		a := alerts[0]
		if a.Status.State != "active" || a.Annotations["summary"] != wantSummary || a.Labels["severity"] != "critical" ||
			len(a.Receivers) != 1 || a.Receivers[0].Name != "e2e-webhook" {
			return fmt.Errorf("state %s, labels %v, annotations %v, receivers %v", a.Status.State, a.Labels, a.Annotations, a.Receivers)
		}
		return nil
	}); err != nil {
		return err
	}
	e.ok("ModelArtsImageFailed for %s active in Alertmanager /api/v2/alerts %.1fs after the flip, routed to e2e-webhook",
		img.Name, time.Since(flipped).Seconds())

	if err := poll(ctx, "the notification at the webhook", 20*time.Second, func() error {
		for _, a := range e.hook.received(match) {
			if a.Status == "firing" {
				return nil
			}
		}
		return errors.New("no firing notification yet")
	}); err != nil {
		return err
	}
	e.ok("Alertmanager notified the webhook receiver %.1fs after the flip", time.Since(flipped).Seconds())

	if err := e.setStatus(ctx, id, modelarts.StatusActive); err != nil {
		return err
	}
	if err := poll(ctx, "ModelArtsImageFailed resolved in Prometheus", 20*time.Second, func() error {
		a, err := e.findAlert(ctx, match)
		if err == nil {
			return fmt.Errorf("still %s", a.State)
		}
		if errors.Is(err, errNoAlert) {
			return nil
		}
		return err
	}); err != nil {
		return err
	}
	e.ok("back to ACTIVE: the alert for %s resolved in Prometheus", img.Name)
	return nil
}

// checkAPIFaults makes the simulator refuse the token project's IAM
// credentials and throttle every ModelArts call.
func (e *e2e) checkAPIFaults(ctx context.Context, _ map[string]modelarts.Image) error {
	for _, f := range []modelartstest.Fault{
		{Kind: modelartstest.FaultStatus, Operation: modelartstest.OpCreateToken, Status: http.StatusUnauthorized},
		{Kind: modelartstest.FaultStatus, Status: http.StatusTooManyRequests}, // ShowImage and ListImage
	} {
		if err := doJSON(ctx, http.MethodPost, e.simURL+"/-/sim/faults", f, http.StatusCreated, nil); err != nil {
			return err
		}
	}
	if err := doJSON(ctx, http.MethodPost, e.simURL+"/-/sim/tokens/expire", nil, http.StatusNoContent, nil); err != nil {
		return err
	}
	injected := time.Now()
	e.logf("faults: CreateToken answers 401 (tokens expired), ShowImage and ListImage answer 429")

	if err := poll(ctx, "modelarts_up", 20*time.Second, func() error {
		if err := e.expectValue(ctx, `modelarts_up{project="`+projectToken+`"}`, 0); err != nil {
			return err
		}
		if err := e.expectValue(ctx, `modelarts_up{project="`+projectAKSK+`"}`, 1); err != nil {
			return err
		}
		_, err := e.one(ctx, `sum(modelarts_api_requests_total{project="`+projectAKSK+`",code="429"}) > 0`)
		return err
	}); err != nil {
		return err
	}
	e.ok("modelarts_up: %s 0 (credentials refused), %s 1 (throttled but answering); 429s counted", projectToken, projectAKSK)

	want := map[string]bool{
		alertKey(map[string]string{"alertname": "ModelArtsAPIDown", "project": projectToken}):     true,
		alertKey(map[string]string{"alertname": "ModelArtsAPIThrottled", "project": projectAKSK}): true,
	}
	for _, id := range akskImages() {
		want[alertKey(map[string]string{"alertname": "ModelArtsImageScrapeFailing", "project": projectAKSK, "id": id})] = true
	}
	var got map[string]bool
	if err := poll(ctx, "API alerts firing", 30*time.Second, func() error {
		alerts, err := e.prom.alerts(ctx)
		if err != nil {
			return err
		}
		got = map[string]bool{}
		for _, a := range alerts {
			if a.Labels["alertname"] == "ModelArtsImageScrapeFailing" && a.Labels["project"] == projectToken {
				return stopPolling(fmt.Errorf("%s is %s although the project is down (ModelArtsAPIDown's case)", alertKey(a.Labels), a.State))
			}
			if a.State == "firing" && want[alertKey(a.Labels)] {
				got[alertKey(a.Labels)] = true
			}
		}
		if len(got) != len(want) {
			var missing []string
			for k := range want {
				if !got[k] {
					missing = append(missing, k)
				}
			}
			return fmt.Errorf("not firing yet: %q", missing)
		}
		return nil
	}); err != nil {
		return err
	}
	e.ok("%.1fs after the faults: ModelArtsAPIDown (%s), ModelArtsAPIThrottled (%s) and ModelArtsImageScrapeFailing for all %d images of %s fire; none for %s",
		time.Since(injected).Seconds(), projectToken, projectAKSK, len(akskImages()), projectAKSK, projectToken)
	return nil
}

// checkFailedReload breaks the exporter's configuration file and reloads.
func (e *e2e) checkFailedReload(ctx context.Context) error {
	good, err := os.ReadFile(e.exporterConfig)
	if err != nil {
		return err
	}
	if err := os.WriteFile(e.exporterConfig, append(good, []byte("not_a_field: true\n")...), 0o600); err != nil {
		return err
	}
	if err := doJSON(ctx, http.MethodPost, e.exporterURL+"/-/reload", nil, http.StatusInternalServerError, nil); err != nil {
		return fmt.Errorf("want the bad configuration refused: %w", err)
	}
	e.ok("POST /-/reload with an unknown field answers 500")
	if err := poll(ctx, "ModelArtsExporterConfigReloadFailed firing", 20*time.Second, func() error {
		if err := e.expectValue(ctx, `modelarts_exporter_config_last_reload_successful{job="`+jobName+`"}`, 0); err != nil {
			return err
		}
		a, err := e.findAlert(ctx, map[string]string{"alertname": "ModelArtsExporterConfigReloadFailed", "instance": e.exporterAddr})
		if err != nil {
			return err
		}
		if a.State != "firing" {
			return fmt.Errorf("state %s", a.State)
		}
		return e.expectValue(ctx, `up{job="`+jobName+`"}`, 1)
	}); err != nil {
		return err
	}
	e.ok("ModelArtsExporterConfigReloadFailed fires while the exporter keeps serving (up 1)")
	return nil
}

// checkExporterDown stops the exporter.
func (e *e2e) checkExporterDown(ctx context.Context) error {
	e.exporterProc.stop(5 * time.Second)
	stopped := time.Now()
	if err := poll(ctx, "ModelArtsExporterDown firing", 20*time.Second, func() error {
		if err := e.expectValue(ctx, `up{job="`+jobName+`"}`, 0); err != nil {
			return err
		}
		a, err := e.findAlert(ctx, map[string]string{"alertname": "ModelArtsExporterDown", "job": jobName, "instance": e.exporterAddr})
		if err != nil {
			return err
		}
		if a.State != "firing" {
			return fmt.Errorf("state %s", a.State)
		}
		return nil
	}); err != nil {
		return err
	}
	e.ok("exporter stopped: up 0 and ModelArtsExporterDown firing after %.1fs", time.Since(stopped).Seconds())
	return nil
}

var errNoAlert = errors.New("no such alert")

// findAlert returns the one alert of Prometheus whose labels include match.
func (e *e2e) findAlert(ctx context.Context, match map[string]string) (promAlert, error) {
	alerts, err := e.prom.alerts(ctx)
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
		return promAlert{}, stopPolling(fmt.Errorf("%d alerts match %v: %v", len(found), match, found))
	}
}

func (e *e2e) setStatus(ctx context.Context, id, status string) error {
	body := map[string]string{"status": status, "status_message": "set by scripts/e2e"}
	return doJSON(ctx, http.MethodPut, e.simURL+"/-/sim/images/"+id+"/status", body, http.StatusOK, nil)
}
