// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// projectRetryInterval: a failed project lookup is answered from memory for
// this long, so that the concurrent calls of one scrape cause one IAM request
// (with AK/SK, failed signatures count towards locking the key pair).
const projectRetryInterval = 30 * time.Second

// projectLookup finds the id of the project named after the region with
// GET {iam}/v3/projects?name={region}, once; the id is cached for the life of
// the client.
type projectLookup struct {
	client    *http.Client // authenticated
	url       string
	region    string
	userAgent string
	maxBody   int64
	now       func() time.Time
	secrets   func() []string // to scrub from IAM's messages

	gate gate

	mu         sync.Mutex
	id         string
	lastErr    error
	retryAfter time.Time
}

type projectsResponse struct {
	Projects []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"projects"`
}

func newProjectLookup(client *http.Client, iamEndpoint, region, userAgent string, maxBody int64, now func() time.Time, secrets func() []string) *projectLookup {
	return &projectLookup{
		client:    client,
		url:       iamURL(iamEndpoint, "projects") + "?" + CanonicalQuery(url.Values{"name": {region}}),
		region:    region,
		userAgent: userAgent,
		maxBody:   maxBody,
		now:       now,
		secrets:   secrets,
		gate:      newGate(),
	}
}

// ID returns the project id, asking IAM the first time.
func (p *projectLookup) ID(ctx context.Context) (string, error) {
	if id, ok, err := p.cached(); ok {
		return id, err
	}
	if err := p.gate.lock(ctx); err != nil {
		return "", &APIError{Operation: OpListProjects, Class: ErrUnreachable, Cause: err}
	}
	defer p.gate.unlock()
	if id, ok, err := p.cached(); ok {
		return id, err
	}
	id, err := p.fetch(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.id = id
	} else if ctx.Err() == nil {
		p.lastErr, p.retryAfter = err, p.now().Add(projectRetryInterval)
	}
	return id, err
}

func (p *projectLookup) cached() (string, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.id != "" {
		return p.id, true, nil
	}
	if p.now().Before(p.retryAfter) {
		return "", true, p.lastErr
	}
	return "", false, nil
}

func (p *projectLookup) fetch(ctx context.Context) (string, error) {
	var body projectsResponse
	resp, err := send(ctx, p.client, request{
		op: OpListProjects, method: http.MethodGet, url: p.url, userAgent: p.userAgent,
		ok: []int{http.StatusOK}, maxBody: p.maxBody, secrets: p.secrets,
	}, &body)
	if err != nil {
		return "", err
	}
	for _, project := range body.Projects {
		if project.Name == p.region && project.ID != "" {
			return project.ID, nil
		}
	}
	return "", &APIError{
		Operation: OpListProjects, RequestID: requestID(resp, nil), Class: ErrNoProject,
		Cause: fmt.Errorf("IAM lists no project named %s for these credentials; set project_id or check region", strconv.Quote(p.region)),
	}
}

// iamURL joins an IAM base URL and a path under /v3. A base URL that already
// ends in /v3 (as OpenStack-style auth URLs do) is not given a second one.
func iamURL(base, path string) string {
	base = strings.TrimSuffix(base, "/")
	if !strings.HasSuffix(base, "/v3") {
		base += "/v3"
	}
	return base + "/" + path
}
