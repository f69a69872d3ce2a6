// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Observer is told about every HTTP request the client sends, including IAM
// token and project lookups; not about calls it answers without sending
// (context already done, a refused access key remembered). statusCode is 0
// when no response arrived. operation is one of the Op* names.
type Observer interface {
	ObserveRequest(operation string, statusCode int, duration time.Duration)
}

// Config configures a Client for one project.
type Config struct {
	Endpoint    string // ModelArts base URL, e.g. https://modelarts.eu-de.otc.t-systems.com
	IAMEndpoint string // e.g. https://iam.eu-de.otc.t-systems.com
	// Region scopes the IAM token and names the project for the project id lookup.
	Region string
	// ProjectID may be empty: it is then taken from the token (password auth)
	// or looked up with GET {iam}/v3/projects?name={Region}.
	ProjectID   string
	Credentials Credentials
	// HTTPClient carries TLS and proxy settings; nil means a default client.
	// The client wraps its Transport with the authentication round tripper.
	HTTPClient *http.Client
	Observer   Observer // may be nil
	UserAgent  string   // sent with every request
	// RateLimit caps the ModelArts requests per second, retries included; 0
	// means no limit. IAM requests (a token a day) are not limited.
	RateLimit float64
	// RateBurst is how many requests may go at once above RateLimit; at least 1.
	RateBurst int
	// Shared holds the guards every client of the process shares across
	// reloads; nil gives the client guards of its own.
	Shared *Shared

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
	OpShowImage    = "ShowImage"    // GET /v1/{project_id}/images/{id}
	OpListImage    = "ListImage"    // GET /v1/{project_id}/images
	OpCreateToken  = "CreateToken"  // POST {iam}/v3/auth/tokens
	OpListProjects = "ListProjects" // GET {iam}/v3/projects

	OpMetadataToken = "MetadataToken"  // PUT {metadata}/meta-data/latest/api/token
	OpSecurityKey   = "GetSecurityKey" // GET {metadata}/openstack/latest/securitykey
)

// defaultUserAgent is sent when Config.UserAgent is empty.
const defaultUserAgent = "modelarts_exporter"

// Client calls the ModelArts image API of one project. It is safe for
// concurrent use and meant to live as long as its configuration: it holds the
// connection pool, the cached IAM token and the resolved project id.
//
// Each call makes one ModelArts request (plus, when needed, one IAM request
// for a token or the project id), after waiting for the client-side rate
// limit; throttling is retried as retryPolicy says, a refused token as
// tokenRoundTripper says, a refused key never (see refusalGuard). Redirects
// are not followed, so credentials never leave the configured hosts. The
// caller's context bounds every call.
type Client struct {
	endpoint   string // base URL without trailing slash
	projectID  string // as configured; may be empty
	userAgent  string
	maxBody    int64             // of every answer but a ListImage page
	maxList    int64             // of a ListImage page
	httpClient *http.Client      // authenticates every request
	base       http.RoundTripper // under the authentication: holds the connection pool

	tokens      *passwordAuth      // password auth only
	keys        keySource          // AK/SK only
	projects    renewing[*project] // the project id looked up, when not configured
	projectsURL string             // {iam}/v3/projects?name={region}
	region      string

	limiter *rate.Limiter // nil: no client-side rate limit
	retry   retryPolicy
}

// NewClient validates cfg and returns a Client. It makes no request.
//
// The endpoints must be absolute http or https URLs. Exactly one kind of
// credentials must be complete (see Credentials). The IAM endpoint is
// required for password auth and whenever ProjectID is empty, Region
// whenever ProjectID is empty.
func NewClient(cfg Config) (*Client, error) {
	endpoint, err := parseEndpoint("endpoint", cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	kind, err := cfg.Credentials.validate()
	if err != nil {
		return nil, err
	}
	iamEndpoint, err := cfg.iamEndpoint(kind)
	if err != nil {
		return nil, err
	}
	if math.IsNaN(cfg.RateLimit) || cfg.RateLimit < 0 || cfg.RateBurst < 0 {
		return nil, fmt.Errorf("rate limit: must not be negative or NaN, got %v requests/s, burst %d", cfg.RateLimit, cfg.RateBurst)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	c := &Client{
		endpoint:    endpoint,
		projectID:   cfg.ProjectID,
		userAgent:   cmp.Or(cfg.UserAgent, defaultUserAgent),
		maxBody:     cmp.Or(cfg.maxBodyBytes, DefaultMaxBodyBytes),
		maxList:     cmp.Or(cfg.maxBodyBytes, defaultMaxListBodyBytes),
		base:        baseTransport(cfg.HTTPClient),
		projects:    newRenewing[*project](OpListProjects, cfg.now),
		projectsURL: iamURL(iamEndpoint, "projects") + "?" + canonicalQuery(url.Values{"name": {cfg.Region}}),
		region:      cfg.Region,
		limiter:     newLimiter(cfg.RateLimit, cfg.RateBurst),
		retry:       *cmp.Or(cfg.retry, &defaultRetryPolicy),
	}
	auth, err := c.authenticator(cfg, kind, iamEndpoint)
	if err != nil {
		return nil, err
	}
	c.httpClient = withTransport(cfg.HTTPClient, auth)
	return c, nil
}

// iamEndpoint checks the IAM endpoint and the region where kind and the
// project id need them and returns the endpoint.
func (cfg Config) iamEndpoint(kind credentialKind) (string, error) {
	var endpoint string
	if kind == kindPassword || cfg.ProjectID == "" || cfg.IAMEndpoint != "" {
		var err error
		if endpoint, err = parseEndpoint("iam endpoint", cfg.IAMEndpoint); err != nil {
			return "", err
		}
	}
	if cfg.ProjectID == "" && cfg.Region == "" {
		return "", errors.New("region: required when the project id is not configured")
	}
	return endpoint, nil
}

// authenticator sets up the client's credentials of kind and returns the
// round tripper that authenticates its requests, with the guards, tokens and
// temporary keys of cfg.Shared (of its own when nil).
func (c *Client) authenticator(cfg Config, kind credentialKind, iamEndpoint string) (http.RoundTripper, error) {
	shared := cfg.Shared
	if shared == nil {
		shared = NewShared()
	}
	cr := cfg.Credentials
	observed := &observingRoundTripper{observer: cfg.Observer, next: c.base}
	switch kind {
	case kindPassword:
		c.tokens = &passwordAuth{
			shared:    shared,
			id:        passwordID{iamURL: iamURL(iamEndpoint, "auth/tokens"), domain: cr.DomainName, user: cr.Username},
			projectID: cfg.ProjectID,
			region:    cfg.Region,
			password:  newSecret(cr.Password, cr.PasswordFile, "password file"),
			iam:       httpCaller{client: withTransport(cfg.HTTPClient, observed), userAgent: c.userAgent, maxBody: c.maxBody},
			now:       cfg.now,
		}
		return &tokenRoundTripper{auth: c.tokens, next: observed}, nil
	case kindMetadata:
		endpoint, err := parseEndpoint("metadata endpoint", cr.MetadataEndpoint)
		if err != nil {
			return nil, err
		}
		provider := shared.metadataProvider(endpoint, cfg.now)
		direct := &observingRoundTripper{observer: cfg.Observer, next: provider.transport}
		c.keys = &metadataKeys{
			provider: provider,
			caller:   httpCaller{client: withTransport(nil, direct), userAgent: c.userAgent, maxBody: c.maxBody},
		}
	default:
		c.keys = &staticKeys{
			accessKey:     cr.AccessKey,
			secretKey:     newSecret(cr.SecretKey, cr.SecretKeyFile, "secret key file"),
			securityToken: newSecret(cr.SecurityToken, cr.SecurityTokenFile, "security token file"),
		}
	}
	return &signingRoundTripper{keys: c.keys, shared: shared, now: cfg.now, maxBody: c.maxBody, next: observed}, nil
}

// CloseIdleConnections closes the connections of the client's pool that are
// not in use, e.g. when the client is being replaced. It does not stop the
// client from being used: it opens new connections as needed.
func (c *Client) CloseIdleConnections() {
	if t, ok := c.base.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// project is the project id IAM lists for the region; once found, it is kept
// for the life of the client.
type project struct{ id string }

func (p *project) due(time.Time) bool    { return p == nil }
func (p *project) usable(time.Time) bool { return p != nil }

// resolveProjectID returns the project id: the configured one; else, with
// password auth, the project of the (region-scoped) token; else the id IAM
// lists for the project named after the region.
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
	resp, err := send(ctx, c.httpClient, request{
		op: OpListProjects, method: http.MethodGet, url: c.projectsURL, userAgent: c.userAgent,
		ok: []int{http.StatusOK}, maxBody: c.maxBody, secrets: c.secrets,
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

// ShowImage returns one image: GET /v1/{project_id}/images/{id}.
// A missing image gives an error that wraps ErrNotFound. A 200 answer about
// another image, or without id or status, is ErrMalformedResponse. The id of
// the image returned is in lower case.
func (c *Client) ShowImage(ctx context.Context, id string) (*Image, error) {
	if id == "" {
		err := &APIError{Operation: OpShowImage, Class: ErrNotFound, Cause: errors.New("empty image id")}
		return nil, fmt.Errorf("show image: %w", err)
	}
	var img Image
	call := apiCall{op: OpShowImage, resource: "images/" + url.PathEscape(id), maxBody: c.maxBody}
	resp, err := c.do(ctx, call, &img)
	if err == nil {
		err = checkShown(&img, id, resp, c.secrets())
	}
	if err != nil {
		return nil, fmt.Errorf("show image %s: %w", id, err)
	}
	return &img, nil
}

// checkShown believes the answer resp to ShowImage of id only when img,
// decoded from it, is about that image and has a status.
func checkShown(img *Image, id string, resp *http.Response, secrets []string) error {
	var cause error
	switch missing := img.check(); {
	case missing == "id":
		cause = errors.New("answer has no id")
	case !strings.EqualFold(img.ID, id):
		cause = fmt.Errorf("answer is about image %s, not %s", cleanText(redact(img.ID, secrets), maxRequestIDLen), id)
	case missing != "":
		cause = errors.New("answer has no " + missing)
	default:
		return nil
	}
	return malformed(OpShowImage, resp, cause)
}

// ListImages returns one page of GET /v1/{project_id}/images; the non-zero
// options become query parameters. Paging is the caller's business.
func (c *Client) ListImages(ctx context.Context, opts ListOptions) (*ImageList, error) {
	var list ImageList
	call := apiCall{op: OpListImage, resource: "images", query: opts.query(), maxBody: c.maxList}
	if _, err := c.do(ctx, call, &list); err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return &list, nil
}

// apiCall is one ModelArts request: GET {endpoint}/v1/{project_id}/{resource}?{query}.
type apiCall struct {
	op       string // one of the Op* names
	resource string // the path below the project, escaped
	query    url.Values
	maxBody  int64 // what is read of the answer at most
}

// attempt sends call once, when the rate limit allows, unless ctx is done by
// then. The query is sent in its canonical form (space as %20, as Huawei's
// SDKs send it): the signature is computed over the bytes sent.
func (c *Client) attempt(ctx context.Context, call apiCall, out any) (*http.Response, error) {
	projectID, err := c.resolveProjectID(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.waitForTurn(ctx, call.op); err != nil {
		return nil, err
	}
	u := c.endpoint + "/v1/" + url.PathEscape(projectID) + "/" + call.resource
	if len(call.query) > 0 {
		u += "?" + canonicalQuery(call.query)
	}
	return send(ctx, c.httpClient, request{
		op: call.op, method: http.MethodGet, url: u, header: map[string]string{headerProjectID: projectID}, userAgent: c.userAgent,
		ok: []int{http.StatusOK}, maxBody: call.maxBody, secrets: c.secrets,
	}, out)
}

// secrets are what must not get into an error should the server quote it
// back: the secrets in use, and the IAM token.
func (c *Client) secrets() []string {
	if c.tokens != nil {
		return c.tokens.secrets()
	}
	return c.keys.secrets()
}

// parseEndpoint checks that raw is an absolute http or https URL without
// query, fragment or user information and returns it without trailing slash.
func parseEndpoint(what, raw string) (string, error) {
	if raw == "" {
		return "", fmt.Errorf("%s: required", what)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // without the raw URL, which may hold userinfo
		}
		return "", fmt.Errorf("%s: invalid URL: %w", what, err)
	}
	switch {
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return "", fmt.Errorf("%s %q: must be an absolute http or https URL", what, u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%s %q: must not have a query or fragment", what, u.Redacted())
	case u.User != nil:
		return "", fmt.Errorf("%s %q: must not carry user information", what, u.Redacted())
	}
	return strings.TrimSuffix(u.String(), "/"), nil
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

// baseTransport returns the transport of hc, or a clone of
// http.DefaultTransport that keeps enough idle connections per host for
// concurrent calls to one endpoint.
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

// withTransport returns a copy of hc (or of a zero client) that sends through
// rt and does not follow redirects.
func withTransport(hc *http.Client, rt http.RoundTripper) *http.Client {
	c := &http.Client{}
	if hc != nil {
		*c = *hc
	}
	c.Transport = rt
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// observingRoundTripper tells the Observer about every request it sends. A
// request whose context is already done is not sent, and not observed.
type observingRoundTripper struct {
	observer Observer
	next     http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
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

// retryPolicy says how a throttled call (HTTP 429) is retried; nothing else
// is: a 5xx or a timeout is left to the next scrape.
//
// A retry happens only when the caller's context has a deadline and the wait
// plus attemptTime still fit before it: the backoff never outlives the scrape.
type retryPolicy struct {
	maxRetries int // per call; 0 disables retries
	// minBackoff and maxBackoff bound the wait before a retry, drawn at random
	// (jitter) between the two so that throttled callers do not retry in step.
	minBackoff, maxBackoff time.Duration
	attemptTime            time.Duration // kept free after the wait for the retried call
}

// defaultRetryPolicy follows the vendor's advice to back off 2-5 s on 429.
var defaultRetryPolicy = retryPolicy{maxRetries: 2, minBackoff: 2 * time.Second, maxBackoff: 5 * time.Second, attemptTime: time.Second}

// backoff returns how long to wait before the next retry of a throttled
// call, and false when there must be no retry: retries are used up, the
// context has no deadline, or not even minBackoff plus attemptTime fit before
// it. The random wait is shortened to fit the deadline, never below minBackoff.
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

// do performs one API call and decodes a 200 answer into out, which it
// returns for its headers, retrying throttling as c.retry allows.
func (c *Client) do(ctx context.Context, call apiCall, out any) (*http.Response, error) {
	for retries := 0; ; retries++ {
		resp, err := c.safeAttempt(ctx, call, out)
		if !errors.Is(err, ErrThrottled) {
			return resp, err
		}
		wait, ok := c.retry.backoff(ctx, retries, time.Now())
		if !ok {
			return nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
	}
}

// safeAttempt is attempt, with a panic while handling an answer turned into
// this call's error: bad input from the cloud must cost one call, never the
// process (the call runs on a scrape's goroutine, where a panic would end it).
func (c *Client) safeAttempt(ctx context.Context, call apiCall, out any) (resp *http.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &APIError{Operation: call.op, Class: ErrMalformedResponse, Cause: fmt.Errorf("internal error while handling the answer: %v", r)}
		}
	}()
	return c.attempt(ctx, call, out)
}

// newLimiter returns the client-side rate limiter for limit requests per
// second with the given burst (at least 1), or nil for no limit.
func newLimiter(limit float64, burst int) *rate.Limiter {
	if limit <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(limit), max(burst, 1))
}

// waitForTurn blocks until the rate limiter lets one more ModelArts request
// go. It fails at once, without waiting, when the turn would come after the
// deadline of ctx: the error then wraps context.DeadlineExceeded.
func (c *Client) waitForTurn(ctx context.Context, op string) error {
	if c.limiter == nil {
		return nil
	}
	err := c.limiter.Wait(ctx)
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = ctxErr
	} else {
		err = fmt.Errorf("the client-side rate limit would delay the request past the deadline: %w", context.DeadlineExceeded)
	}
	return &APIError{Operation: op, Class: ErrUnreachable, Cause: err}
}
