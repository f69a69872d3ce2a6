// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Observer is told about every HTTP request the client sends; statusCode is 0 when none answered.
type Observer interface {
	ObserveRequest(operation string, statusCode int, duration time.Duration)
}

// Config configures a Client for one project.
type Config struct {
	Endpoint    string // ModelArts base URL, e.g. https://modelarts.eu-de.otc.t-systems.com
	IAMEndpoint string // e.g. https://iam.eu-de.otc.t-systems.com
	Region      string // scopes the IAM token; names the project when ProjectID is empty
	ProjectID   string // "": from the password token, or the IAM project named Region
	Credentials Credentials
	HTTPClient  *http.Client // TLS and proxy settings; nil means a default client
	Observer    Observer     // may be nil
	UserAgent   string       // sent with every request
	RateLimit   float64      // ModelArts requests per second, retries included; 0: no limit
	RateBurst   int          // at least 1
	Shared      *Shared      // what the process's clients share across reloads; nil: the client's own

	maxBodyBytes int64            // when not 0, caps what is read of every answer
	now          func() time.Time // nil: time.Now
	retry        *retryPolicy     // nil: defaultRetryPolicy
}

// API is what the collector needs of a client; *Client implements it.
type API interface {
	ShowImage(ctx context.Context, id string) (*Image, error)
	ListImages(ctx context.Context, opts ListOptions) (*ImageList, error)
}

var _ API = (*Client)(nil)

// Operation names, as the Observer and APIError.Operation see them.
const (
	OpShowImage     = "ShowImage"      // GET /v1/{project_id}/images/{id}
	OpListImage     = "ListImage"      // GET /v1/{project_id}/images
	OpCreateToken   = "CreateToken"    // POST {iam}/v3/auth/tokens
	OpListProjects  = "ListProjects"   // GET {iam}/v3/projects
	OpMetadataToken = "MetadataToken"  // PUT {metadata}/meta-data/latest/api/token
	OpSecurityKey   = "GetSecurityKey" // GET {metadata}/openstack/latest/securitykey
)

// Client calls the ModelArts image API of one project; it is safe for concurrent use.
// Redirects are not followed, so that credentials never leave the configured hosts.
type Client struct {
	endpoint  string            // base URL without trailing slash
	projectID string            // as configured; may be empty
	api       httpCaller        // authenticates every request
	maxList   int64             // of a ListImage page
	base      http.RoundTripper // under the authentication: holds the connection pool

	tokens      *passwordAuth      // password auth only
	secrets     func() []string    // the secrets and the IAM token in use, scrubbed from the answers errors quote
	projects    renewing[*project] // the project id looked up, when not configured
	projectsURL string             // {iam}/v3/projects?name={region}
	region      string

	limiter *rate.Limiter // nil: no client-side rate limit
	retry   retryPolicy
}

// NewClient returns a Client for cfg as config validates it: one complete kind of credentials,
// absolute http(s) endpoints, the IAM endpoint and the region; it makes no request.
func NewClient(cfg Config) *Client {
	if cfg.now == nil {
		cfg.now = time.Now
	}
	c := &Client{
		endpoint:    strings.TrimRight(cfg.Endpoint, "/"),
		projectID:   cfg.ProjectID,
		api:         httpCaller{userAgent: cmp.Or(cfg.UserAgent, "modelarts_exporter"), maxBody: cmp.Or(cfg.maxBodyBytes, DefaultMaxBodyBytes)},
		maxList:     cmp.Or(cfg.maxBodyBytes, defaultMaxListBodyBytes),
		base:        baseTransport(cfg.HTTPClient),
		projects:    newRenewing[*project](OpListProjects, cfg.now),
		projectsURL: iamURL(cfg.IAMEndpoint, "projects") + "?" + canonicalQuery(url.Values{"name": {cfg.Region}}),
		region:      cfg.Region,
		retry:       *cmp.Or(cfg.retry, &defaultRetryPolicy),
	}
	if cfg.RateLimit > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(cfg.RateLimit), max(cfg.RateBurst, 1))
	}
	c.api.client = withTransport(cfg.HTTPClient, c.authenticator(cfg))
	return c
}

// authenticator sets up the credentials and returns the round tripper that sends them.
func (c *Client) authenticator(cfg Config) http.RoundTripper {
	shared := cfg.Shared
	if shared == nil {
		shared = NewShared()
	}
	cr := cfg.Credentials
	observed := &observingRoundTripper{observer: cfg.Observer, next: c.base}
	rt := &signingRoundTripper{shared: shared, now: cfg.now, maxBody: c.api.maxBody, next: observed}
	switch {
	case cr.Username != "":
		c.tokens = &passwordAuth{
			shared:    shared,
			id:        passwordID{iamURL: iamURL(cfg.IAMEndpoint, "auth/tokens"), domain: cr.DomainName, user: cr.Username},
			projectID: cfg.ProjectID,
			region:    cfg.Region,
			password:  &secret{value: cr.Password, file: cr.PasswordFile, what: "password file"},
			iam:       httpCaller{client: withTransport(cfg.HTTPClient, observed), userAgent: c.api.userAgent, maxBody: c.api.maxBody},
			now:       cfg.now,
			next:      observed,
		}
		c.secrets = c.tokens.secrets
		return c.tokens
	case cr.MetadataEndpoint != "":
		rt.metadata = shared.metadataProvider(strings.TrimRight(cr.MetadataEndpoint, "/"), cfg.now)
		direct := &observingRoundTripper{observer: cfg.Observer, next: rt.metadata.transport}
		rt.caller = httpCaller{client: withTransport(nil, direct), userAgent: c.api.userAgent, maxBody: c.api.maxBody}
	default:
		rt.accessKey = cr.AccessKey
		rt.secretKey = &secret{value: cr.SecretKey, file: cr.SecretKeyFile, what: "secret key file"}
		rt.securityToken = &secret{value: cr.SecurityToken, file: cr.SecurityTokenFile, what: "security token file"}
	}
	c.secrets = rt.secrets
	return rt
}

// CloseIdleConnections closes the idle connections of the client's pool; the client stays usable.
func (c *Client) CloseIdleConnections() {
	if t, ok := c.base.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// project is the project id IAM lists for the region, kept for the life of the client.
type project struct{ id string }

func (p *project) due(time.Time) bool    { return p == nil }
func (p *project) usable(time.Time) bool { return p != nil }

// resolveProjectID returns the configured project id, else that of the
// (region-scoped) password token, else the one IAM lists for the region.
func (c *Client) resolveProjectID(ctx context.Context) (string, error) {
	if c.projectID != "" {
		return c.projectID, nil
	}
	if c.tokens != nil {
		tok, err := c.tokens.projectToken(ctx)
		if err != nil {
			return "", fmt.Errorf("resolve project id: %w", err)
		}
		if tok.projectID != "" {
			return tok.projectID, nil
		}
	}
	p, err := c.projects.get(ctx, c.lookUpProject)
	if err != nil {
		return "", fmt.Errorf("resolve project id: %w", err)
	}
	return p.id, nil
}

// lookUpProject asks IAM for the id of the project named after the region.
func (c *Client) lookUpProject(ctx context.Context) (*project, error) {
	var body struct {
		Projects []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"projects"`
	}
	resp, err := c.api.send(ctx, request{
		op: OpListProjects, method: http.MethodGet, url: c.projectsURL, ok: []int{http.StatusOK}, secrets: c.secrets,
	}, &body)
	if err != nil {
		return nil, err
	}
	for _, p := range body.Projects {
		if p.Name == c.region && p.ID != "" {
			return &project{id: p.ID}, nil
		}
	}
	return nil, &APIError{
		Operation: OpListProjects, RequestID: requestID(resp, ""), Class: ErrNoProject,
		Cause: fmt.Errorf("IAM lists no project named %q for these credentials; set project_id or check region", c.region),
	}
}

// ShowImage returns one image, its id in lower case; a missing image is ErrNotFound.
func (c *Client) ShowImage(ctx context.Context, id string) (*Image, error) {
	if id == "" {
		err := &APIError{Operation: OpShowImage, Class: ErrNotFound, Cause: errors.New("empty image id")}
		return nil, fmt.Errorf("show image: %w", err)
	}
	var img Image
	resp, err := c.do(ctx, OpShowImage, "images/"+url.PathEscape(id), 0, &img)
	if err == nil {
		err = checkShown(&img, id, resp, c.secrets())
	}
	if err != nil {
		return nil, fmt.Errorf("show image %s: %w", id, err)
	}
	return &img, nil
}

// checkShown believes an answer to ShowImage of id only when it is about that image and has a status.
func checkShown(img *Image, id string, resp *http.Response, secrets []string) error {
	switch missing := img.check(); {
	case missing != "id" && !strings.EqualFold(img.ID, id):
		return malformed(OpShowImage, resp, fmt.Errorf("answer is about image %s, not %s", cleanText(redact(img.ID, secrets), maxRequestIDLen), id))
	case missing != "":
		return malformed(OpShowImage, resp, errors.New("answer has no "+missing))
	}
	return nil
}

// ListImages returns one page of GET /v1/{project_id}/images, the non-zero options as its query
// in its signed canonical form (space as %20, as Huawei's SDKs send it).
func (c *Client) ListImages(ctx context.Context, opts ListOptions) (*ImageList, error) {
	var list ImageList
	resource := "images"
	if q := opts.query(); len(q) > 0 {
		resource += "?" + canonicalQuery(q)
	}
	if _, err := c.do(ctx, OpListImage, resource, c.maxList, &list); err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return &list, nil
}

// iamURL joins an IAM base URL (perhaps OpenStack-style, ending in /v3) and a path under /v3.
func iamURL(base, path string) string {
	base = strings.TrimSuffix(base, "/")
	if !strings.HasSuffix(base, "/v3") {
		base += "/v3"
	}
	return base + "/" + path
}

// baseTransport returns the transport of hc, or a clone of http.DefaultTransport
// that keeps enough idle connections for concurrent calls to one endpoint.
func baseTransport(hc *http.Client) http.RoundTripper {
	if hc != nil && hc.Transport != nil {
		return hc.Transport
	}
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport
	}
	t = t.Clone()
	t.MaxIdleConnsPerHost = 64
	return t
}

// withTransport returns a copy of hc (or of a zero client) that sends through rt without redirects.
func withTransport(hc *http.Client, rt http.RoundTripper) *http.Client {
	c := &http.Client{}
	if hc != nil {
		*c = *hc
	}
	c.Transport = rt
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// observingRoundTripper tells the Observer about every request it sends, none when ctx is done.
type observingRoundTripper struct {
	observer Observer
	next     http.RoundTripper
}

func (rt *observingRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		closeRequestBody(req)
		return nil, err
	}
	start := time.Now()
	resp, err := rt.next.RoundTrip(req)
	if rt.observer != nil {
		status := 0
		if err == nil {
			status = resp.StatusCode
		}
		rt.observer.ObserveRequest(operationFrom(req.Context()), status, time.Since(start))
	}
	return resp, err
}

type operationKey struct{}

// withOperation names the API operation of the requests made with ctx.
func withOperation(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, operationKey{}, op)
}

func operationFrom(ctx context.Context) string {
	if op, ok := ctx.Value(operationKey{}).(string); ok {
		return op
	}
	return "Unknown"
}

// retryPolicy says how a throttled call (HTTP 429) is retried; a 5xx or timeout is left to the next scrape.
type retryPolicy struct {
	maxRetries             int           // per call; 0 disables retries
	minBackoff, maxBackoff time.Duration // the random wait (jitter) before a retry
	attemptTime            time.Duration // kept free after the wait for the retried call
}

// defaultRetryPolicy follows the vendor's advice to back off 2-5 s on 429.
var defaultRetryPolicy = retryPolicy{maxRetries: 2, minBackoff: 2 * time.Second, maxBackoff: 5 * time.Second, attemptTime: time.Second}

// backoff returns the wait before the next retry, shortened to leave attemptTime before
// the deadline of ctx; false when retries are used up or no deadline or minBackoff fits.
func (p retryPolicy) backoff(ctx context.Context, retries int, now time.Time) (time.Duration, bool) {
	deadline, ok := ctx.Deadline()
	if retries >= p.maxRetries || !ok {
		return 0, false
	}
	wait := p.minBackoff
	if spread := p.maxBackoff - p.minBackoff; spread > 0 {
		wait += rand.N(spread + 1)
	}
	if wait = min(wait, deadline.Sub(now)-p.attemptTime); wait < p.minBackoff {
		return 0, false
	}
	return wait, true
}

// do sends GET {endpoint}/v1/{project_id}/{resource} (resource escaped) when the rate limit allows,
// retries throttling, and decodes a 200 answer, of at most maxBody bytes (0: the default), into out;
// resp is for its headers. A turn of the rate limit that would come after ctx's deadline fails at once.
// A panic while handling the answer fails the call: bad input must not end the scrape's goroutine.
func (c *Client) do(ctx context.Context, op, resource string, maxBody int64, out any) (resp *http.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, &APIError{Operation: op, Class: ErrMalformedResponse, Cause: fmt.Errorf("internal error while handling the answer: %v", r)}
		}
	}()
	for retries := 0; ; retries++ {
		projectID, err := c.resolveProjectID(ctx)
		if err != nil {
			return nil, err
		}
		if c.limiter != nil {
			if err := c.limiter.Wait(ctx); err != nil {
				err = cmp.Or(ctx.Err(), fmt.Errorf("the client-side rate limit would delay the request past the deadline: %w", context.DeadlineExceeded))
				return nil, &APIError{Operation: op, Class: ErrUnreachable, Cause: err}
			}
		}
		resp, err = c.api.send(ctx, request{
			op: op, method: http.MethodGet, url: c.endpoint + "/v1/" + url.PathEscape(projectID) + "/" + resource,
			header: map[string]string{headerProjectID: projectID}, ok: []int{http.StatusOK}, maxBody: maxBody, secrets: c.secrets,
		}, out)
		if !errors.Is(err, ErrThrottled) {
			return resp, err
		}
		wait, ok := c.retry.backoff(ctx, retries, time.Now())
		if !ok {
			return nil, err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, err
		}
	}
}
