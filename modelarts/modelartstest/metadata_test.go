// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// putMetadataToken asks for a session token; ttl "" sends no TTL header.
func putMetadataToken(t *testing.T, s *Server, ttl string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, s.URL+MetadataTokenPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ttl != "" {
		req.Header.Set("X-Metadata-Token-Ttl-Seconds", ttl)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

// getSecurityKey asks for the temporary credential; session "" sends no
// X-Metadata-Token.
func getSecurityKey(t *testing.T, s *Server, session string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+SecurityKeyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if session != "" {
		req.Header.Set("X-Metadata-Token", session)
	}
	return do(t, req)
}

type credential struct {
	Access        string `json:"access"`
	Secret        string `json:"secret"`
	SecurityToken string `json:"securitytoken"`
	ExpiresAt     string `json:"expires_at"`
}

// fetchCredential gets the temporary credential, which must be answered.
func fetchCredential(t *testing.T, s *Server) credential {
	t.Helper()
	r := getSecurityKey(t, s, "")
	expectStatus(t, r, http.StatusOK)
	var body struct {
		Credential credential `json:"credential"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("securitykey body %q: %v", r.body, err)
	}
	return body.Credential
}

// How a call with a temporary key sends its security token.
const (
	tokenSigned   = iota // sent and signed, as the SDK does
	tokenMissing         // not sent
	tokenUnsigned        // sent, not among the signed headers
	tokenWrong           // another value, signed
)

// temporaryGet sends a ShowImage signed with cred.
func temporaryGet(t *testing.T, s *Server, clock *fakeClock, cred credential, how int) response {
	t.Helper()
	req := newRequest(t, s, imagePath(s, SampleIDFrozen))
	signer := testSigner{ak: cred.Access, sk: cred.Secret, now: clock.Now,
		signedHeaders: []string{"host", "x-project-id", "x-sdk-date", "x-security-token"}}
	switch how {
	case tokenSigned:
		req.Header.Set("X-Security-Token", cred.SecurityToken)
	case tokenMissing:
		signer.signedHeaders = nil
	case tokenUnsigned:
		req.Header.Set("X-Security-Token", cred.SecurityToken)
		signer.signedHeaders = nil
	case tokenWrong:
		req.Header.Set("X-Security-Token", cred.SecurityToken+"x")
	}
	signer.sign(req, nil)
	return do(t, req)
}

func TestMetadataSessionTokenModes(t *testing.T) {
	const (
		none    = ""
		bogus   = "bogus-session-token"
		fresh   = "fresh"   // a token just issued
		expired = "expired" // a token issued with a 60 s TTL, 61 s ago
	)
	tests := []struct {
		mode             string
		wantPut          int            // PUT with a TTL of 21600
		wantGet          map[string]int // GET with each kind of session token
		wantSessionToken bool
	}{
		{SessionTokenOptional, http.StatusOK, map[string]int{
			none: http.StatusOK, fresh: http.StatusOK, bogus: http.StatusUnauthorized, expired: http.StatusUnauthorized,
		}, true},
		{SessionTokenRequired, http.StatusOK, map[string]int{
			none: http.StatusUnauthorized, fresh: http.StatusOK, bogus: http.StatusUnauthorized, expired: http.StatusUnauthorized,
		}, true},
		{SessionToken404, http.StatusNotFound, map[string]int{none: http.StatusOK, bogus: http.StatusOK}, false},
		{SessionToken405, http.StatusMethodNotAllowed, map[string]int{none: http.StatusOK, bogus: http.StatusOK}, false},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			s, clock := startServer(t, Options{MetadataSessionToken: tt.mode})
			r := putMetadataToken(t, s, "21600", nil)
			expectStatus(t, r, tt.wantPut)
			if !tt.wantSessionToken {
				for kind, want := range tt.wantGet {
					expectStatus(t, getSecurityKey(t, s, kind), want)
				}
				return
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || len(r.body) < 20 {
				t.Fatalf("session token %q as %q", r.body, ct)
			}
			short := string(putMetadataToken(t, s, "60", nil).body)
			tokens := map[string]string{none: "", bogus: bogus, fresh: string(r.body), expired: short}
			clock.Advance(61 * time.Second)
			for kind, want := range tt.wantGet {
				if got := getSecurityKey(t, s, tokens[kind]); got.status != want {
					t.Errorf("GET with %q session token: %d, want %d (%s)", kind, got.status, want, got.body)
				}
			}
		})
	}
}

func TestMetadataTokenRequest(t *testing.T) {
	tests := []struct {
		name   string
		ttl    string
		header map[string]string
		want   int
	}{
		{"no TTL", "", nil, http.StatusBadRequest},
		{"TTL not a number", "6h", nil, http.StatusBadRequest},
		{"TTL below a minute", "59", nil, http.StatusBadRequest},
		{"TTL above 6 hours", "21601", nil, http.StatusBadRequest},
		{"TTL of a minute", "60", nil, http.StatusOK},
		{"TTL of 6 hours", "21600", nil, http.StatusOK},
		{"through a proxy", "21600", map[string]string{"X-Forwarded-For": "10.0.0.1"}, http.StatusForbidden},
	}
	s, _ := startServer(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectStatus(t, putMetadataToken(t, s, tt.ttl, tt.header), tt.want)
		})
	}
	// Another method on the token path is the router's 405.
	req, _ := http.NewRequest(http.MethodGet, s.URL+MetadataTokenPath, nil)
	expectStatus(t, do(t, req), http.StatusMethodNotAllowed)
}

func TestSecurityKeyAnswer(t *testing.T) {
	s, clock := startServer(t, Options{TemporaryKeyTTL: time.Hour})
	clock.Advance(1234567 * time.Microsecond)
	r := getSecurityKey(t, s, "")
	expectStatus(t, r, http.StatusOK)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	var body map[string]map[string]string
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("%s: %v", r.body, err)
	}
	cred := body["credential"]
	for _, field := range []string{"access", "secret", "securitytoken", "expires_at"} {
		if cred[field] == "" {
			t.Errorf("credential lacks %s: %s", field, r.body)
		}
	}
	// RFC 3339, UTC, microseconds, as metadata_accessor.go's example.
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`).MatchString(cred["expires_at"]) {
		t.Errorf("expires_at %q", cred["expires_at"])
	}
	if want := clock.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z"); cred["expires_at"] != want {
		t.Errorf("expires_at %q, want %q", cred["expires_at"], want)
	}
}

// TestTemporaryKeysRotateWithoutGap walks a key's life: the same key until
// half of its validity is left, then a new one, while the old one works until
// its own expiry.
func TestTemporaryKeysRotateWithoutGap(t *testing.T) {
	const ttl = 10 * time.Second
	s, clock := startServer(t, Options{TemporaryKeyTTL: ttl})
	start := clock.Now()
	first := fetchCredential(t, s)
	steps := []struct {
		at      time.Duration // since the first key was issued
		wantNew bool          // a new key is handed out
		issued  int
	}{
		{0, false, 1},
		{4 * time.Second, false, 1},
		{ttl / 2, false, 1}, // exactly half left: not less than half
		{ttl/2 + time.Millisecond, true, 2},
		{ttl - time.Millisecond, false, 2},
	}
	current := first
	for _, st := range steps {
		clock.Set(start.Add(st.at))
		got := fetchCredential(t, s)
		switch {
		case st.wantNew && (got.Access == current.Access || got.Secret == current.Secret || got.SecurityToken == current.SecurityToken):
			t.Fatalf("at %v: no new key (access %s, was %s)", st.at, got.Access, current.Access)
		case !st.wantNew && got != current:
			t.Fatalf("at %v: key changed to %s from %s", st.at, got.Access, current.Access)
		}
		if n := s.TemporaryKeysIssued(); n != st.issued {
			t.Fatalf("at %v: %d keys issued, want %d", st.at, n, st.issued)
		}
		current = got
		// Both keys work for as long as each is valid.
		for _, k := range []credential{first, current} {
			if r := temporaryGet(t, s, clock, k, tokenSigned); r.status != http.StatusOK {
				t.Fatalf("at %v: key %s refused: %d %s", st.at, k.Access, r.status, r.body)
			}
		}
	}
	second := current
	if want := start.Add(ttl/2 + time.Millisecond + ttl).UTC().Format(expiresAtLayout); second.ExpiresAt != want {
		t.Errorf("second key expires %s, want %s", second.ExpiresAt, want)
	}

	clock.Set(start.Add(ttl)) // the first key's own expiry
	expectError(t, temporaryGet(t, s, clock, first, tokenSigned), http.StatusUnauthorized, CodeSignatureFailed)
	if r := temporaryGet(t, s, clock, second, tokenSigned); r.status != http.StatusOK {
		t.Fatalf("second key after the first one's expiry: %d %s", r.status, r.body)
	}
	if got := fetchCredential(t, s); got != second {
		t.Errorf("the metadata service handed out %s, want %s", got.Access, second.Access)
	}
	if n := s.RefusedSignatures(first.Access); n != 1 {
		t.Errorf("refused signatures of the first key: %d, want 1", n)
	}
}

func TestTemporaryKeyRefusals(t *testing.T) {
	tests := []struct {
		name string
		how  int
		age  time.Duration // since the key was issued
	}{
		{"security token missing", tokenMissing, 0},
		{"security token wrong", tokenWrong, 0},
		{"security token not signed", tokenUnsigned, 0},
		{"key expired", tokenSigned, time.Minute},
		{"key long expired", tokenSigned, time.Hour},
	}
	for _, refuse403 := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(tt.name+"/RefuseWith403="+strconv.FormatBool(refuse403), func(t *testing.T) {
				s, clock := startServer(t, Options{TemporaryKeyTTL: time.Minute, RefuseWith403: refuse403})
				cred := fetchCredential(t, s)
				clock.Advance(tt.age)
				r := temporaryGet(t, s, clock, cred, tt.how)
				if refuse403 {
					expectError(t, r, http.StatusForbidden, CodeAKSKInvalid)
				} else {
					expectError(t, r, http.StatusUnauthorized, CodeSignatureFailed)
				}
				if n := s.RefusedSignatures(cred.Access); n != 1 {
					t.Errorf("RefusedSignatures = %d, want 1", n)
				}
			})
		}
	}
}

// TestTemporaryKeyLockout: refused security tokens count towards the lockout
// of that access key only.
func TestTemporaryKeyLockout(t *testing.T) {
	s, clock := startServer(t, Options{})
	cred := fetchCredential(t, s)
	for i := range LockoutThreshold {
		r := temporaryGet(t, s, clock, cred, tokenWrong)
		expectError(t, r, http.StatusUnauthorized, CodeSignatureFailed)
		if locked := s.Locked(cred.Access); locked != (i == LockoutThreshold-1) {
			t.Fatalf("after %d refusals: locked %v", i+1, locked)
		}
	}
	r := temporaryGet(t, s, clock, cred, tokenSigned)
	if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), MsgKeyLocked) {
		t.Fatalf("a locked key's good call: %d %s", r.status, r.body)
	}
	if n := s.RefusedSignatures(cred.Access); n != LockoutThreshold+1 {
		t.Errorf("RefusedSignatures = %d, want %d", n, LockoutThreshold+1)
	}
	if r := signedGet(t, s, clock, imagePath(s, SampleIDFrozen)); r.status != http.StatusOK {
		t.Errorf("the demo key suffered: %d", r.status)
	}
	if n := s.RefusedSignatures(DemoAccessKey); n != 0 {
		t.Errorf("RefusedSignatures(demo key) = %d", n)
	}
}

func TestMetadataCounters(t *testing.T) {
	s, clock := startServer(t, Options{MetadataSessionToken: SessionTokenRequired})
	session := string(putMetadataToken(t, s, "21600", nil).body)
	expectStatus(t, getSecurityKey(t, s, ""), http.StatusUnauthorized)
	expectStatus(t, getSecurityKey(t, s, session), http.StatusOK)
	r := createToken(t, s, tokenBodyFor(DemoDomain, DemoUser, "wrong", `{"name":"eu-de"}`))
	expectStatus(t, r, http.StatusUnauthorized)
	signer := demoSigner(clock)
	signer.sk = "wrong"
	req := newRequest(t, s, imagePath(s, SampleIDFrozen))
	signer.sign(req, nil)
	expectStatus(t, do(t, req), http.StatusUnauthorized)

	counts := []struct {
		name      string
		got, want int
	}{
		{"Requests(MetadataToken)", s.Requests(OpMetadataToken), 1},
		{"Requests(GetSecurityKey)", s.Requests(OpSecurityKey), 2},
		{"RequestsWithStatus(GetSecurityKey, 401)", s.RequestsWithStatus(OpSecurityKey, http.StatusUnauthorized), 1},
		{"RequestsWithStatus(GetSecurityKey, 200)", s.RequestsWithStatus(OpSecurityKey, http.StatusOK), 1},
		{"failed logins", s.RequestsWithStatus(OpCreateToken, http.StatusUnauthorized), 1},
		{"TemporaryKeysIssued", s.TemporaryKeysIssued(), 1},
		{"RefusedSignatures(demo key)", s.RefusedSignatures(DemoAccessKey), 1},
		{"RefusedSignatures(all)", s.RefusedSignatures(""), 1},
	}
	for _, c := range counts {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if st := s.Stats(); st.TemporaryKeysIssued != 1 || st.RefusedSignatures[DemoAccessKey] != 1 {
		t.Errorf("stats: %+v", st)
	}
	s.ResetCounters()
	if s.TemporaryKeysIssued() != 0 || s.RefusedSignatures("") != 0 {
		t.Errorf("after reset: %d keys issued, %d refused", s.TemporaryKeysIssued(), s.RefusedSignatures(""))
	}
}

func TestMetadataFaults(t *testing.T) {
	tests := []struct {
		name       string
		fault      Fault
		wantStatus int
		wantBody   string
	}{
		{"service down", Fault{Kind: FaultStatus, Operation: OpSecurityKey, Status: http.StatusServiceUnavailable},
			http.StatusServiceUnavailable, "Service Unavailable"},
		{"no agency", Fault{Kind: FaultStatus, Operation: OpSecurityKey, Status: http.StatusUnauthorized, ErrorMsg: MsgNoAgency},
			http.StatusUnauthorized, MsgNoAgency},
		{"gateway page", Fault{Kind: FaultRaw, Operation: OpSecurityKey, Status: http.StatusBadGateway},
			http.StatusBadGateway, "<html>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := startServer(t, Options{})
			tt.fault.Count = 1
			s.AddFault(tt.fault)
			r := getSecurityKey(t, s, "")
			if r.status != tt.wantStatus || !strings.Contains(string(r.body), tt.wantBody) {
				t.Fatalf("faulty answer %d %q, want %d with %q", r.status, r.body, tt.wantStatus, tt.wantBody)
			}
			fetchCredential(t, s) // the fault was used up
			if n := s.RequestsWithStatus(OpSecurityKey, tt.wantStatus); n != 1 {
				t.Errorf("RequestsWithStatus = %d", n)
			}
		})
	}
	t.Run("token request", func(t *testing.T) {
		s, _ := startServer(t, Options{})
		s.AddFault(Fault{Kind: FaultStatus, Operation: OpMetadataToken, Status: http.StatusServiceUnavailable, Count: 1})
		expectStatus(t, putMetadataToken(t, s, "21600", nil), http.StatusServiceUnavailable)
		expectStatus(t, getSecurityKey(t, s, ""), http.StatusOK) // untouched
		expectStatus(t, putMetadataToken(t, s, "21600", nil), http.StatusOK)
	})
}

func TestMetadataFaultValidation(t *testing.T) {
	tests := []struct {
		fault Fault
		ok    bool
	}{
		{Fault{Kind: FaultStatus, Operation: OpSecurityKey, Status: 503}, true},
		{Fault{Kind: FaultDelay, Operation: OpMetadataToken, Delay: time.Second}, true},
		{Fault{Kind: FaultMalformedJSON, Operation: OpSecurityKey}, true},
		{Fault{Kind: FaultStatus, Operation: OpSecurityKey, Status: 503, ImageID: "x"}, false},
		{Fault{Kind: FaultNegativeSize, Operation: OpSecurityKey}, false},
	}
	for _, tt := range tests {
		if err := tt.fault.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) = %v", tt.fault, err)
		}
	}
	// A fault without an operation leaves the metadata service alone.
	s, _ := startServer(t, Options{})
	s.AddFault(Fault{Kind: FaultStatus, Status: 500})
	expectStatus(t, getSecurityKey(t, s, ""), http.StatusOK)
}

func TestBadMetadataSessionTokenOption(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Options{MetadataSessionToken: \"always\"} accepted")
		}
	}()
	New(Options{MetadataSessionToken: "always"})
}
