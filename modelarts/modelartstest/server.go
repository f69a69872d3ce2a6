// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// Operation names, as used by [Fault.Operation] and [Server.Requests]. They are
// the names the client reports to its Observer.
const (
	OpShowImage    = "ShowImage"
	OpListImage    = "ListImage"
	OpCreateToken  = "CreateToken"
	OpListProjects = "ListProjects"
	// The ECS metadata service's (see metadata.go).
	OpMetadataToken = "MetadataToken"  // PUT /meta-data/latest/api/token
	OpSecurityKey   = "GetSecurityKey" // GET /openstack/latest/securitykey
)

// Defaults of [Options].
const (
	// DefaultProjectID is a fixed, made-up project id (32 hex digits like a real one).
	DefaultProjectID = "5d1c6a0f8e2b4c3d9a7e6f5b4c3d2e1f"
	// DefaultRegion is the region, which is also the name of the project.
	DefaultRegion = "eu-de"
	// DefaultTokenTTL is how long an issued IAM token is valid, as on IAM.
	DefaultTokenTTL = 24 * time.Hour
	// DefaultPageSize is ListImage's limit when the request has none (documented).
	DefaultPageSize = 200
	// DefaultMaxPageSize caps ListImage's limit. The API documents no maximum;
	// a larger limit is cut to this one without an error.
	DefaultMaxPageSize = 1000
)

// Demo credentials, accepted when [Options].Keys or [Options].Users is nil.
// They are fake and only good for this simulator.
const (
	DemoAccessKey = "DEMOACCESSKEYEXAMPLE"
	DemoSecretKey = "DemoSecretKeyExampleNotARealSecret000000"
	DemoDomain    = "demo-domain"
	DemoUser      = "demo-user"
	DemoPassword  = "demo-password"
)

// User is an IAM user that may obtain a token with the password method.
type User struct {
	Domain   string `json:"domain"`
	Name     string `json:"name"`
	Password string `json:"password"`
}

// Options configure a Server. The zero value is usable: it gives a server for
// project [DefaultProjectID] in [DefaultRegion] without images, accepting the
// demo key and the demo user.
type Options struct {
	// ProjectID is the only project the server knows; default DefaultProjectID.
	ProjectID string
	// Region is the region and the project's name; default DefaultRegion.
	Region string
	// Keys maps access keys to secret keys. Nil means {DemoAccessKey: DemoSecretKey};
	// an empty map means no key at all. Temporary keys: see Server.AddKey.
	Keys map[string]string
	// Users may obtain tokens. Nil means the demo user (DemoDomain, DemoUser,
	// DemoPassword); an empty slice means nobody.
	Users []User
	// Images is the initial content. It is copied.
	Images []modelarts.Image
	// NotFoundAs404 answers a missing image with 404 instead of the 400
	// ModelArts.6404 seen on real servers. The error body is the same.
	NotFoundAs404 bool
	// CurrentFromOne numbers ListImage's "current" page from 1 instead of 0
	// (the API does not document which).
	CurrentFromOne bool
	// UntypedListing is what a ListImage without type lists: UntypedBuildIn
	// (the documented default) or UntypedAll. "" means the value of the
	// environment variable UntypedListingEnv, else UntypedBuildIn. Another
	// value panics. Server.SetUntypedListing changes it later.
	UntypedListing string
	// RefuseWith403 answers a bad AK/SK signature with 403 ModelArts.0206 and
	// an unknown or expired token with 403 ModelArts.0203, the 403 rows of
	// opentelekomcloud-docs/modelarts api-ref/source/appendix/error_codes.rst,
	// instead of 401 APIG.0301 / ModelArts.0203 / ModelArts.0202.
	RefuseWith403 bool
	// TokenTTL is the validity of issued tokens; default DefaultTokenTTL.
	TokenTTL time.Duration
	// Latency is added to every API call (not to the admin API), for benchmarks.
	Latency time.Duration
	// MaxInFlight caps the API calls served at once; excess calls wait for a
	// free slot (or for their client to give up). 0 means no cap.
	MaxInFlight int
	// MaxPageSize caps ListImage's limit; default DefaultMaxPageSize.
	MaxPageSize int
	// Now is the clock for tokens, temporary keys, X-Sdk-Date checks and
	// lockouts; default time.Now.
	Now func() time.Time
	// MetadataSessionToken is how the metadata service treats session tokens:
	// SessionTokenOptional (default), SessionTokenRequired, SessionToken404 or
	// SessionToken405. Another value panics.
	MetadataSessionToken string
	// TemporaryKeyTTL is the validity of the temporary access keys the
	// metadata service issues; default DefaultTemporaryKeyTTL. A new key is
	// issued when the current one has less than half of it left.
	TemporaryKeyTTL time.Duration
}

func (o Options) withDefaults() Options {
	if o.ProjectID == "" {
		o.ProjectID = DefaultProjectID
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.Keys == nil {
		o.Keys = map[string]string{DemoAccessKey: DemoSecretKey}
	}
	if o.Users == nil {
		o.Users = []User{{Domain: DemoDomain, Name: DemoUser, Password: DemoPassword}}
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = DefaultTokenTTL
	}
	if o.MaxPageSize <= 0 {
		o.MaxPageSize = DefaultMaxPageSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.UntypedListing == "" {
		o.UntypedListing = defaultUntypedListing()
	}
	if err := checkUntypedListing(o.UntypedListing); err != nil {
		panic("modelartstest: Options: " + err.Error())
	}
	if o.MetadataSessionToken == "" {
		o.MetadataSessionToken = SessionTokenOptional
	}
	if err := checkSessionTokenMode(o.MetadataSessionToken); err != nil {
		panic("modelartstest: Options: " + err.Error())
	}
	if o.TemporaryKeyTTL <= 0 {
		o.TemporaryKeyTTL = DefaultTemporaryKeyTTL
	}
	return o
}

// Server is the fake ModelArts and IAM API, with the ECS metadata service. All its methods are safe for
// concurrent use.
type Server struct {
	// URL is the base URL of a server made by NewServer, e.g.
	// http://127.0.0.1:41234, for the ModelArts, the IAM and the metadata
	// endpoint alike.
	// It is empty for a server made by New.
	URL string

	opts    Options
	handler http.Handler
	ts      *httptest.Server

	done      chan struct{}
	closeOnce sync.Once

	images *imageStore
	auth   *authState
	meta   *metadataState
	faults *faultSet
	stats  *counters

	latency    atomic.Int64
	untypedAll atomic.Bool   // see Options.UntypedListing
	refuse403  atomic.Bool   // see Options.RefuseWith403
	inFlight   chan struct{} // nil: no cap

	requestIDPrefix string
	requestSeq      atomic.Uint64
}

// New returns a Server without a listener: serve Handler on your own one.
func New(opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{
		opts:            opts,
		done:            make(chan struct{}),
		images:          newImageStore(opts.Images),
		auth:            newAuthState(opts.Keys, opts.Users),
		meta:            &metadataState{mode: opts.MetadataSessionToken, sessions: map[string]time.Time{}},
		faults:          newFaultSet(),
		stats:           newCounters(),
		requestIDPrefix: randomHex(8),
	}
	s.latency.Store(int64(opts.Latency))
	s.untypedAll.Store(opts.UntypedListing == UntypedAll)
	s.refuse403.Store(opts.RefuseWith403)
	if opts.MaxInFlight > 0 {
		s.inFlight = make(chan struct{}, opts.MaxInFlight)
	}
	s.handler = s.routes()
	return s
}

// NewServer starts a Server on a loopback port; URL tells where. Call Close
// when done (t.Cleanup(srv.Close)).
func NewServer(opts Options) *Server {
	s := New(opts)
	s.ts = httptest.NewServer(s.handler)
	s.URL = s.ts.URL
	return s
}

// Handler serves the ModelArts, IAM, metadata and admin routes.
func (s *Server) Handler() http.Handler { return s.handler }

// ProjectID is the id of the server's only project.
func (s *Server) ProjectID() string { return s.opts.ProjectID }

// Region is the server's region, also the name of its project.
func (s *Server) Region() string { return s.opts.Region }

// Close ends calls that are waiting (latency, delay faults, in-flight cap) and,
// for a server made by NewServer, stops the listener.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
	if s.ts != nil {
		s.ts.Close()
	}
}

// SetLatency changes the latency added to every API call.
func (s *Server) SetLatency(d time.Duration) { s.latency.Store(int64(d)) }

func (s *Server) now() time.Time { return s.opts.Now() }

// newRequestID returns 32 hex digits, unique for the life of the server.
func (s *Server) newRequestID() string {
	return fmt.Sprintf("%s%016x", s.requestIDPrefix, s.requestSeq.Add(1))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}

// call is one API request being served.
type call struct {
	op        string
	r         *http.Request
	requestID string
	who       *principal // nil for CreateToken and the metadata service
}

// reply is an answer before it is written, so that faults can replace or
// alter it.
type reply struct {
	status      int
	contentType string
	header      http.Header
	body        []byte
	// imageIDs are the images the answer is about (the requested one for
	// ShowImage, the page for ListImage); faults naming an image match them.
	imageIDs []string
}

type handlerFunc func(c *call) reply

// operation wraps an API handler: counting, the in-flight cap, latency,
// authentication, faults.
func (s *Server) operation(op string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, onStatus: func(code int) { s.stats.answered(op, code) }}
		s.stats.begin(op)
		defer func() { s.stats.end(op, rec.status != 0) }()

		if !s.acquire(r.Context()) {
			return
		}
		defer s.release()
		if !s.wait(r.Context(), time.Duration(s.latency.Load())) {
			return
		}
		c := &call{op: op, r: r, requestID: w.Header().Get("X-Request-Id")}
		rp, admitted := s.serve(c, h)
		if !admitted {
			writeReply(rec, rp)
			return
		}
		s.respond(rec, c, rp)
	})
}

// serve authenticates the call and runs the handler; admitted is false when
// the credentials or the project were refused (faults do not apply then).
func (s *Server) serve(c *call, h handlerFunc) (rp reply, admitted bool) {
	if c.op == OpCreateToken || isMetadataOperation(c.op) {
		return h(c), true
	}
	who, fail := s.authenticate(c)
	if fail != nil {
		return *fail, false
	}
	c.who = who
	if c.op == OpShowImage || c.op == OpListImage {
		if fail := s.checkProject(c); fail != nil {
			return *fail, false
		}
	}
	return h(c), true
}

func (s *Server) acquire(ctx context.Context) bool {
	if s.inFlight == nil {
		return true
	}
	select {
	case s.inFlight <- struct{}{}:
		return true
	case <-ctx.Done():
	case <-s.done:
	}
	return false
}

func (s *Server) release() {
	if s.inFlight != nil {
		<-s.inFlight
	}
}

// wait sleeps for d unless the client gives up or the server closes first;
// it reports whether the full time passed.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-s.done:
	}
	return false
}

func writeReply(w http.ResponseWriter, rp reply) {
	h := w.Header()
	for k, v := range rp.header {
		h[k] = v
	}
	if rp.contentType != "" {
		h.Set("Content-Type", rp.contentType)
	}
	h.Set("Content-Length", strconv.Itoa(len(rp.body)))
	w.WriteHeader(rp.status)
	_, _ = w.Write(rp.body) // the client may be gone; nothing to do about it
}

// statusRecorder tells onStatus the status code of the answer once, before
// the answer is sent.
type statusRecorder struct {
	http.ResponseWriter
	status   int
	onStatus func(int)
}

func (w *statusRecorder) setStatus(code int) {
	if w.status == 0 {
		w.status = code
		w.onStatus(code)
	}
}

func (w *statusRecorder) WriteHeader(code int) {
	w.setStatus(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	w.setStatus(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
