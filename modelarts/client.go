// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Observer is told about every HTTP request the client sends, including IAM
// token and project lookups; not about calls it answers without sending
// (context already done, a refused access key remembered). statusCode is 0
// when no response arrived.
// Operation names: OpShowImage, OpListImage, OpCreateToken, OpListProjects,
// OpMetadataToken, OpSecurityKey.
type Observer interface {
	ObserveRequest(operation string, statusCode int, duration time.Duration)
}

// Credentials holds exactly one of the three ways to authenticate:
// AccessKey+SecretKey (optionally SecurityToken) for AK/SK signing;
// MetadataEndpoint for AK/SK signing with temporary keys; or
// DomainName+Username+Password for an IAM password token. A secret and its
// file are not both set. A file is read when a call needs it and read again
// whenever its size or modification time changes (trailing white space
// trimmed); when it cannot be read, its last good content is used.
type Credentials struct {
	AccessKey     string
	SecretKey     string
	SecurityToken string
	// SecretKeyFile and SecurityTokenFile, when set, are read again whenever
	// they change, replacing SecretKey and SecurityToken.
	SecretKeyFile     string
	SecurityTokenFile string
	// MetadataEndpoint, when set, is the ECS metadata service that gives
	// temporary access keys and security tokens (e.g. http://169.254.169.254);
	// the access key fields are then empty.
	MetadataEndpoint string

	DomainName string
	Username   string
	Password   string
	// PasswordFile, when set, is read again whenever it changes, replacing Password.
	PasswordFile string
}

// Config configures a Client for one project.
type Config struct {
	// Endpoint is the ModelArts base URL, e.g. https://modelarts.eu-de.otc.t-systems.com.
	Endpoint string
	// IAMEndpoint is the IAM base URL, e.g. https://iam.eu-de.otc.t-systems.com.
	IAMEndpoint string
	// Region scopes the IAM token and names the project for the project id lookup.
	Region string
	// ProjectID may be empty: it is then taken from the token (password auth)
	// or looked up with GET {iam}/v3/projects?name={Region}.
	ProjectID   string
	Credentials Credentials
	// HTTPClient carries TLS and proxy settings; nil means a default client.
	// The client wraps its Transport with the authentication round tripper.
	HTTPClient *http.Client
	// Observer may be nil.
	Observer Observer
	// UserAgent is sent with every request.
	UserAgent string
	// MaxBodyBytes, when not 0, caps what is read of the answer to every call.
	// 0 means DefaultMaxListBodyBytes (8 MiB) for a ListImage page and
	// DefaultMaxBodyBytes (1 MiB) for every other answer.
	MaxBodyBytes int64
	// Now is the clock (for signing and token expiry); nil means time.Now.
	Now func() time.Time
	// RateLimit caps the ModelArts requests per second, retries included; 0
	// means no limit. IAM requests (a token a day) are not limited.
	RateLimit float64
	// RateBurst is how many requests may go at once above RateLimit; at least 1.
	RateBurst int
	// Retry is the policy for throttled calls; nil means DefaultRetryPolicy.
	Retry *RetryPolicy
	// Shared holds the guards every client of the process shares across
	// reloads; nil gives the client guards of its own.
	Shared *Shared
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

const (
	// DefaultUserAgent is sent when Config.UserAgent is empty.
	DefaultUserAgent = "modelarts_exporter"
	// defaultMaxIdleConnsPerHost lets concurrent calls to one endpoint reuse connections.
	defaultMaxIdleConnsPerHost = 64
)

// Client calls the ModelArts image API of one project. It is safe for
// concurrent use and meant to live as long as its configuration: it holds the
// connection pool, the cached IAM token and the resolved project id.
//
// Each call makes one ModelArts request (plus, when needed, one IAM request
// for a token or the project id), after waiting for the client-side rate
// limit. A 429 answer is retried with a jittered backoff as the RetryPolicy
// allows, within the deadline of the caller's context; 5xx answers are not
// retried. With a token, a 401 (or 403 invalid token) answer is retried once
// with a renewed token, unless the token was fresh; with AK/SK, never (five
// bad signatures lock the key pair): after a refusal (ErrUnauthorized) of a
// signed request, nothing is signed with the key for five minutes, and calls
// fail at once with the remembered refusal. These memories, the IAM tokens
// and the temporary keys live in Config.Shared. Redirects are not followed,
// so credentials never leave the configured hosts. The caller's context
// bounds every call.
type Client struct {
	endpoint   string // base URL without trailing slash
	projectID  string // as configured; may be empty
	userAgent  string
	maxBody    int64             // of every answer but a ListImage page
	maxList    int64             // of a ListImage page
	httpClient *http.Client      // authenticates every request
	base       http.RoundTripper // under the authentication: holds the connection pool

	tokens   *passwordAuth  // password auth only
	keys     keySource      // AK/SK only
	projects *projectLookup // nil when the project id is configured

	limiter *rate.Limiter // nil: no client-side rate limit
	retry   RetryPolicy
}

// NewClient validates cfg and returns a Client. It makes no request.
//
// The endpoints must be absolute http or https URLs. Exactly one kind of
// credentials must be complete: AccessKey and SecretKey or SecretKeyFile
// (SecurityToken or SecurityTokenFile optional); MetadataEndpoint alone; or
// DomainName, Username and Password or PasswordFile. The IAM endpoint is
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
	var iamEndpoint string
	if kind == kindPassword || cfg.ProjectID == "" || cfg.IAMEndpoint != "" {
		if iamEndpoint, err = parseEndpoint("iam endpoint", cfg.IAMEndpoint); err != nil {
			return nil, err
		}
	}
	if cfg.ProjectID == "" && cfg.Region == "" {
		return nil, errors.New("region: required when the project id is not configured")
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("max body bytes: must not be negative, got %d", cfg.MaxBodyBytes)
	}
	if math.IsNaN(cfg.RateLimit) || cfg.RateLimit < 0 || cfg.RateBurst < 0 {
		return nil, fmt.Errorf("rate limit: must not be negative or NaN, got %v requests/s, burst %d", cfg.RateLimit, cfg.RateBurst)
	}

	c := &Client{
		endpoint:  endpoint,
		projectID: cfg.ProjectID,
		userAgent: cmp.Or(cfg.UserAgent, DefaultUserAgent),
		maxBody:   cmp.Or(cfg.MaxBodyBytes, DefaultMaxBodyBytes),
		maxList:   cmp.Or(cfg.MaxBodyBytes, DefaultMaxListBodyBytes),
		base:      baseTransport(cfg.HTTPClient),
		limiter:   newLimiter(cfg.RateLimit, cfg.RateBurst),
		retry:     DefaultRetryPolicy,
	}
	if cfg.Retry != nil {
		c.retry = *cfg.Retry
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	auth, err := c.authenticator(cfg, kind, iamEndpoint, now)
	if err != nil {
		return nil, err
	}
	c.httpClient = withTransport(cfg.HTTPClient, auth)
	if cfg.ProjectID == "" {
		c.projects = newProjectLookup(c.httpClient, iamEndpoint, cfg.Region, c.userAgent, c.maxBody, now, c.secrets)
	}
	return c, nil
}

// authenticator sets up the client's credentials of kind and returns the
// round tripper that authenticates its requests, with the guards, tokens and
// temporary keys of cfg.Shared (of its own when nil).
func (c *Client) authenticator(cfg Config, kind credentialKind, iamEndpoint string, now func() time.Time) (http.RoundTripper, error) {
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
			now:       now,
		}
		return &tokenRoundTripper{auth: c.tokens, next: observed}, nil
	case kindMetadata:
		endpoint, err := parseEndpoint("metadata endpoint", cr.MetadataEndpoint)
		if err != nil {
			return nil, err
		}
		provider := shared.metadataProvider(endpoint, now)
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
	return &signingRoundTripper{keys: c.keys, shared: shared, now: now, maxBody: c.maxBody, next: observed}, nil
}

// CloseIdleConnections closes the connections of the client's pool that are
// not in use, e.g. when the client is being replaced. It does not stop the
// client from being used: it opens new connections as needed.
func (c *Client) CloseIdleConnections() {
	if t, ok := c.base.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// ProjectID returns the project id: the configured one; else, with password
// auth, the project of the (region-scoped) token; else the id IAM lists for
// the project named after the region. A resolved id is cached.
func (c *Client) ProjectID(ctx context.Context) (string, error) {
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
	id, err := c.projects.ID(ctx)
	if err != nil {
		return "", fmt.Errorf("resolve project id: %w", err)
	}
	return id, nil
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

// query returns the non-zero options as ListImage query parameters.
func (o ListOptions) query() url.Values {
	q := url.Values{}
	if o.Limit != 0 {
		q.Set("limit", fmt.Sprint(o.Limit))
	}
	if o.Offset != 0 {
		q.Set("offset", fmt.Sprint(o.Offset))
	}
	for key, value := range map[string]string{
		"name":         o.Name,
		"namespace":    o.Namespace,
		"service_type": o.ServiceType,
		"type":         o.Type,
		"workspace_id": o.WorkspaceID,
	} {
		if value != "" {
			q.Set(key, value)
		}
	}
	return q
}

// apiCall is one ModelArts request: GET {endpoint}/v1/{project_id}/{resource}?{query}.
type apiCall struct {
	op       string // one of the Op* names
	resource string // the path below the project, escaped
	query    url.Values
	maxBody  int64 // what is read of the answer at most
}

// attempt sends call once, when the rate limit allows, unless ctx is done by
// then: a request never sent fails with ErrUnreachable wrapping the
// context's error. The query is sent in its canonical form (space as %20, as
// Huawei's SDKs send it): the signature is computed over the bytes sent.
func (c *Client) attempt(ctx context.Context, call apiCall, out any) (*http.Response, error) {
	projectID, err := c.ProjectID(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.waitForTurn(ctx, call.op); err != nil {
		return nil, err
	}
	u := c.endpoint + "/v1/" + url.PathEscape(projectID) + "/" + call.resource
	if len(call.query) > 0 {
		u += "?" + CanonicalQuery(call.query)
	}
	return send(ctx, c.httpClient, request{
		op: call.op, method: http.MethodGet, url: u, projectID: projectID, userAgent: c.userAgent,
		ok: []int{http.StatusOK}, maxBody: call.maxBody, secrets: c.secrets,
	}, out)
}

// secrets are what an answer must not get into an error should the server
// quote it back: the secrets in use, and the IAM token.
func (c *Client) secrets() []string {
	if c.tokens != nil {
		return c.tokens.secrets()
	}
	return c.keys.secrets()
}

// transportError classifies an error of http.Client.Do: an *APIError from
// the authentication layer (e.g. IAM refused the password) is passed on,
// anything else means no answer arrived.
func transportError(op string, err error) error {
	if apiErr := AsAPIError(err); apiErr != nil {
		return apiErr
	}
	return &APIError{Operation: op, Class: ErrUnreachable, Cause: err}
}

// String describes the credentials without their secrets, so that printing
// them (e.g. with %v) cannot leak them.
func (cr Credentials) String() string {
	return fmt.Sprintf("Credentials{AccessKey: %q, SecretKey: %s, SecurityToken: %s, SecretKeyFile: %q, SecurityTokenFile: %q, "+
		"MetadataEndpoint: %q, DomainName: %q, Username: %q, Password: %s, PasswordFile: %q}",
		cr.AccessKey, redacted(cr.SecretKey), redacted(cr.SecurityToken), cr.SecretKeyFile, cr.SecurityTokenFile,
		cr.MetadataEndpoint, cr.DomainName, cr.Username, redacted(cr.Password), cr.PasswordFile)
}

// GoString is String, for %#v.
func (cr Credentials) GoString() string { return cr.String() }

// missingFields names the empty fields, sorted, joined by " and ".
func missingFields(fields map[string]string) string {
	var missing []string
	for name, value := range fields {
		if value == "" {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	return strings.Join(missing, " and ")
}

// parseEndpoint checks that raw is an absolute http or https URL without
// query or fragment and returns it without trailing slash.
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
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s %q: must be an absolute http or https URL", what, u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%s %q: must not have a query or fragment", what, u.Redacted())
	}
	if u.User != nil {
		return "", fmt.Errorf("%s %q: must not carry user information", what, u.Redacted())
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// baseTransport returns the transport of hc, or a clone of
// http.DefaultTransport that keeps more idle connections per host.
func baseTransport(hc *http.Client) http.RoundTripper {
	if hc != nil && hc.Transport != nil {
		return hc.Transport
	}
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport
	}
	t = t.Clone()
	t.MaxIdleConnsPerHost = defaultMaxIdleConnsPerHost
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
