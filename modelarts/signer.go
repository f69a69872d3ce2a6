// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// SDK-HMAC-SHA256 (AK/SK) request signing as Open Telekom Cloud and Huawei
// Cloud API gateways verify it:
//
//	CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n
//	                   CanonicalHeaders \n SignedHeaders \n hex(sha256(body))
//	StringToSign     = SDK-HMAC-SHA256 \n X-Sdk-Date \n hex(sha256(CanonicalRequest))
//	Signature        = hex(HMAC-SHA256(SecretKey, StringToSign))
const (
	signAlgorithm   = "SDK-HMAC-SHA256"
	sdkDateFormat   = "20060102T150405Z" // X-Sdk-Date, UTC
	emptyBodySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	headerSDKDate       = "X-Sdk-Date"
	headerSecurityToken = "X-Security-Token"
	headerProjectID     = "X-Project-Id"
)

// defaultSignedHeaders are the headers Sign signs when the request carries them, sorted.
var defaultSignedHeaders = []string{"content-type", "host", "x-project-id", "x-sdk-date", "x-security-token"}

// Signer signs requests with an access key / secret key pair; a nil Now means time.Now.
type Signer struct {
	AccessKey     string
	SecretKey     string
	SecurityToken string // set for temporary credentials; sent as X-Security-Token
	Now           func() time.Time
}

// Sign adds X-Sdk-Date (unless req has one), X-Security-Token (when s has one) and the
// Authorization header to req; a body that GetBody cannot re-read is buffered and replaced.
func (s *Signer) Sign(req *http.Request) error {
	if s.AccessKey == "" || s.SecretKey == "" {
		return errors.New("sign request: access key and secret key are required")
	}
	date := req.Header.Get(headerSDKDate)
	if date == "" {
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		date = now().UTC().Format(sdkDateFormat)
		req.Header.Set(headerSDKDate, date)
	} else if _, err := time.Parse(sdkDateFormat, date); err != nil {
		return fmt.Errorf("sign request: %s %q is not of the form %s", headerSDKDate, date, sdkDateFormat)
	}
	if s.SecurityToken != "" {
		req.Header.Set(headerSecurityToken, s.SecurityToken)
	}
	bodyHash, err := payloadHash(req)
	if err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	var signed []string
	for _, name := range defaultSignedHeaders {
		if _, ok := headerValue(req, name); ok {
			signed = append(signed, name)
		}
	}
	sig := signature(s.SecretKey, date, canonicalRequest(req, signed, bodyHash))
	req.Header.Set("Authorization", fmt.Sprintf("%s Access=%s, SignedHeaders=%s, Signature=%s",
		signAlgorithm, s.AccessKey, strings.Join(signed, ";"), sig))
	return nil
}

// Format prints the signer, in any verb, with its secrets as <secret>.
func (s Signer) Format(f fmt.State, _ rune) {
	type plain Signer // without Format
	s.SecretKey, s.SecurityToken, s.Now = redacted(s.SecretKey), redacted(s.SecurityToken), nil
	_, _ = fmt.Fprintf(f, "Signer%+v", plain(s))
}

// String is Format's %v, for loggers that look for a String method.
func (s Signer) String() string { return fmt.Sprint(s) }

// redacted is "<secret>" in place of secret, unless it is empty.
func redacted(secret string) string {
	if secret == "" {
		return ""
	}
	return "<secret>"
}

// canonicalRequest returns the canonical form of req for the signed header names (any case and order).
func canonicalRequest(req *http.Request, signedHeaders []string, bodySHA256Hex string) string {
	return strings.Join([]string{
		req.Method,
		canonicalURI(req.URL.EscapedPath()),
		canonicalQuery(req.URL.Query()),
		canonicalHeaders(req, signedHeaders),
		strings.Join(sortedLower(signedHeaders), ";"),
		bodySHA256Hex,
	}, "\n")
}

// canonicalURI re-encodes each segment of the path as sent, ending with "/"; splitting before
// decoding keeps %2F in its segment, as the server sees it.
func canonicalURI(escapedPath string) string {
	segments := strings.Split(escapedPath, "/")
	for i, seg := range segments {
		if raw, err := url.PathUnescape(seg); err == nil {
			seg = raw
		}
		segments[i] = percentEncode(seg)
	}
	uri := strings.Join(segments, "/")
	if !strings.HasSuffix(uri, "/") {
		uri += "/"
	}
	return uri
}

// canonicalQuery returns the sorted k=v pairs, percent-encoded (a space as %20), joined by "&".
func canonicalQuery(query url.Values) string {
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(query)) {
		for _, v := range slices.Sorted(slices.Values(query[k])) {
			pairs = append(pairs, percentEncode(k)+"="+percentEncode(v))
		}
	}
	return strings.Join(pairs, "&")
}

// canonicalHeaders returns "name:value\n" for every signed header, sorted by name.
func canonicalHeaders(req *http.Request, signedHeaders []string) string {
	var b strings.Builder
	for _, name := range sortedLower(signedHeaders) {
		value, _ := headerValue(req, name)
		b.WriteString(name + ":" + value + "\n")
	}
	return b.String()
}

// signature signs the canonical request with the secret key for the X-Sdk-Date sdkDate.
func signature(secretKey, sdkDate, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	mac := hmac.New(sha256.New, []byte(secretKey))
	mac.Write([]byte(signAlgorithm + "\n" + sdkDate + "\n" + hex.EncodeToString(sum[:])))
	return hex.EncodeToString(mac.Sum(nil))
}

// headerValue returns the trimmed values of the lowercase header name,
// joined by ",", and whether req carries it; host is req.Host or req.URL.Host.
func headerValue(req *http.Request, name string) (string, bool) {
	if name == "host" {
		host := req.Host
		if host == "" && req.URL != nil {
			host = req.URL.Host
		}
		return strings.TrimSpace(host), host != ""
	}
	values := req.Header.Values(name)
	trimmed := make([]string, len(values))
	for i, v := range values {
		trimmed[i] = strings.TrimSpace(v)
	}
	return strings.Join(trimmed, ","), len(values) > 0
}

// payloadHash returns the hex SHA-256 of the request body without consuming it.
func payloadHash(req *http.Request) (string, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return emptyBodySHA256, nil
	}
	rc := req.Body // replaced after reading unless GetBody gives a copy
	var err error
	if req.GetBody != nil {
		rc, err = req.GetBody()
	}
	var body []byte
	if err == nil {
		body, err = io.ReadAll(rc)
		_ = rc.Close()
	}
	if err != nil {
		return "", fmt.Errorf("read body: %w", err)
	}
	if req.GetBody == nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:]), nil
}

// percentEncode encodes every byte but A-Z a-z 0-9 - _ . ~ as %XX (uppercase hex):
// QueryEscape, with a space as %20 instead of "+".
func percentEncode(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func sortedLower(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(strings.TrimSpace(n))
	}
	slices.Sort(out)
	return out
}

// signingRoundTripper signs a clone of every request with the current access keys, unless the
// key's guard (see refusalGuard) stops it; it never retries. An answer other than a 2xx it returns
// as its *APIError. The keys can change without a new client: configured ones, the secrets
// possibly read from files, or the temporary keys of a metadata service.
type signingRoundTripper struct {
	accessKey                string
	secretKey, securityToken *secret
	metadata                 *metadataProvider // nil: configured keys
	caller                   httpCaller        // asks metadata

	shared  *Shared
	now     func() time.Time
	maxBody int64 // of a refused answer, read to describe it
	next    http.RoundTripper
}

func (rt *signingRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	op := operationFrom(req.Context())
	keys, temporary, err := rt.keys(req.Context())
	if err != nil {
		closeRequestBody(req)
		return nil, err
	}
	guard := rt.shared.keyGuard(keys)
	defer guard.firstContact(req.Context())()
	clone := req.Clone(req.Context())
	signer := Signer{AccessKey: keys.accessKey, SecretKey: keys.secretKey, SecurityToken: keys.securityToken, Now: rt.now}
	if err = guard.check(op, rt.now()); err == nil {
		err = signer.Sign(clone)
	}
	if err != nil {
		closeRequestBody(req)
		return nil, err
	}
	resp, err := rt.next.RoundTrip(clone)
	if err != nil {
		return nil, err
	}
	secrets := append(rt.secrets(), keys.secretKey, keys.securityToken) // those sent too, if replaced since
	e, accepted := authAnswer(op, resp, rt.maxBody, secrets)
	if accepted {
		guard.accepted()
	}
	if e == nil {
		return resp, nil
	}
	if e.Class == ErrUnauthorized {
		guard.refused(rt.now(), e)
		if temporary != nil { // the next call asks for new keys; configured ones change when their files do
			rt.metadata.keys.invalidate(temporary)
		}
	}
	return nil, e
}

// keys returns the access keys of a request, and the temporary keys that hold them (nil: configured).
func (rt *signingRoundTripper) keys(ctx context.Context) (accessKeys, *temporaryKeys, error) {
	if rt.metadata != nil {
		t, err := rt.metadata.keys.get(ctx, func(ctx context.Context) (*temporaryKeys, error) { return rt.metadata.fetchKeys(ctx, rt.caller) })
		if err != nil {
			return accessKeys{}, nil, err
		}
		return t.keys, t, nil
	}
	op := operationFrom(ctx)
	sk, err := rt.secretKey.get(op)
	if err != nil {
		return accessKeys{}, nil, err
	}
	token, err := rt.securityToken.get(op)
	if err != nil {
		return accessKeys{}, nil, err
	}
	return accessKeys{accessKey: rt.accessKey, secretKey: sk, securityToken: token}, nil, nil
}

// secrets are the secret key and security token in use, to scrub from errors.
func (rt *signingRoundTripper) secrets() []string {
	if rt.metadata == nil {
		return []string{rt.secretKey.current(), rt.securityToken.current()}
	}
	if t := rt.metadata.keys.current(); t != nil {
		return []string{t.keys.secretKey, t.keys.securityToken}
	}
	return nil
}

// closeRequestBody closes the body of a request never sent, as a RoundTripper must.
func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}
