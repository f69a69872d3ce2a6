// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// SDK-HMAC-SHA256 (AK/SK) request signing as Open Telekom Cloud and Huawei Cloud
// API gateways verify it. The building blocks are exported so that they can be
// tested against the published vectors and fuzzed one by one:
//
//	CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n
//	                   CanonicalHeaders \n SignedHeaders \n hex(sha256(body))
//	StringToSign     = SDK-HMAC-SHA256 \n X-Sdk-Date \n hex(sha256(CanonicalRequest))
//	Signature        = hex(HMAC-SHA256(SecretKey, StringToSign))

const (
	// SignAlgorithm names the signing scheme in StringToSign and Authorization.
	SignAlgorithm = "SDK-HMAC-SHA256"
	// SDKDateFormat is the layout of the X-Sdk-Date header (UTC).
	SDKDateFormat = "20060102T150405Z"
	// EmptyBodySHA256 is hex(sha256("")), the payload hash of a request without body.
	EmptyBodySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	headerSDKDate       = "X-Sdk-Date"
	headerSecurityToken = "X-Security-Token"
	headerProjectID     = "X-Project-Id"
	headerAuthorization = "Authorization"
)

// DefaultSignedHeaders are the lowercase names of the headers Signer.Sign signs
// when the request carries them. They are sorted.
var DefaultSignedHeaders = []string{"content-type", "host", "x-project-id", "x-sdk-date", "x-security-token"}

// Signer signs requests with an access key / secret key pair.
// The zero Now means time.Now. A Signer is safe for concurrent use.
type Signer struct {
	AccessKey     string
	SecretKey     string
	SecurityToken string // set for temporary credentials; sent as X-Security-Token
	Now           func() time.Time
}

// Sign adds X-Sdk-Date (unless the request already has one), X-Security-Token
// (when the signer has one) and the Authorization header to req. It signs
// the headers of DefaultSignedHeaders that req carries. A request body is
// hashed; when it cannot be re-read through GetBody, it is buffered and replaced.
func (s *Signer) Sign(req *http.Request) error {
	if s.AccessKey == "" || s.SecretKey == "" {
		return errors.New("sign request: access key and secret key are required")
	}
	date := req.Header.Get(headerSDKDate)
	if date == "" {
		date = s.now().UTC().Format(SDKDateFormat)
		req.Header.Set(headerSDKDate, date)
	} else if _, err := time.Parse(SDKDateFormat, date); err != nil {
		return fmt.Errorf("sign request: %s %q is not of the form %s", headerSDKDate, date, SDKDateFormat)
	}
	if s.SecurityToken != "" {
		req.Header.Set(headerSecurityToken, s.SecurityToken)
	}
	bodyHash, err := payloadHash(req)
	if err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	signed := SignedHeaders(req)
	canonical := CanonicalRequest(req, signed, bodyHash)
	signature := Signature(s.SecretKey, StringToSign(date, canonical))
	req.Header.Set(headerAuthorization, AuthorizationHeader(s.AccessKey, signed, signature))
	return nil
}

// String describes the signer without its secrets, so that printing one
// (e.g. with %v) cannot leak them.
func (s Signer) String() string {
	return fmt.Sprintf("Signer{AccessKey: %q, SecretKey: <secret>, SecurityToken: %s}", s.AccessKey, redacted(s.SecurityToken))
}

// GoString is String, for %#v.
func (s Signer) GoString() string { return s.String() }

func redacted(secret string) string {
	if secret == "" {
		return `""`
	}
	return "<secret>"
}

func (s *Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// SignedHeaders returns the names of DefaultSignedHeaders that req carries,
// sorted. "host" counts as present when req.Host or req.URL.Host is set.
func SignedHeaders(req *http.Request) []string {
	var names []string
	for _, name := range DefaultSignedHeaders {
		if _, ok := headerValue(req, name); ok {
			names = append(names, name)
		}
	}
	return names
}

// CanonicalRequest returns the canonical form of req for the given lowercase
// signed header names (sorted or not) and the hex SHA-256 of the body.
func CanonicalRequest(req *http.Request, signedHeaders []string, bodySHA256Hex string) string {
	names := sortedLower(signedHeaders)
	return strings.Join([]string{
		req.Method,
		CanonicalURI(req.URL.EscapedPath()),
		CanonicalQuery(req.URL.Query()),
		CanonicalHeaders(req, names),
		strings.Join(names, ";"),
		bodySHA256Hex,
	}, "\n")
}

// CanonicalURI takes the path as sent on the wire (URL.EscapedPath), splits
// it on "/", decodes each segment and percent-encodes it again the canonical
// way; it ends the result with "/". The empty path becomes "/". Splitting
// before decoding keeps an escaped "/" (%2F) inside its segment, as the
// server sees it.
func CanonicalURI(escapedPath string) string {
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

// CanonicalQuery sorts the keys and, per key, the values; both are
// percent-encoded like path segments (a space becomes %20) and joined as
// k=v pairs separated by "&". A key without value gives "k=".
func CanonicalQuery(query url.Values) string {
	keys := make([]string, 0, len(query))
	for k := range query {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var pairs []string
	for _, k := range keys {
		values := append([]string(nil), query[k]...)
		sort.Strings(values)
		for _, v := range values {
			pairs = append(pairs, percentEncode(k)+"="+percentEncode(v))
		}
	}
	return strings.Join(pairs, "&")
}

// CanonicalHeaders returns "name:value\n" for every signed header, sorted by
// name, with the value trimmed (several values of one header joined by ",").
// The host comes from req.Host, else req.URL.Host.
func CanonicalHeaders(req *http.Request, signedHeaders []string) string {
	var b strings.Builder
	for _, name := range sortedLower(signedHeaders) {
		value, _ := headerValue(req, name)
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(value)
		b.WriteByte('\n')
	}
	return b.String()
}

// StringToSign returns the string the signature is computed over, for the
// X-Sdk-Date value sdkDate and the canonical request.
func StringToSign(sdkDate, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return SignAlgorithm + "\n" + sdkDate + "\n" + hex.EncodeToString(sum[:])
}

// Signature returns hex(HMAC-SHA256(secretKey, stringToSign)).
func Signature(secretKey, stringToSign string) string {
	mac := hmac.New(sha256.New, []byte(secretKey))
	mac.Write([]byte(stringToSign))
	return hex.EncodeToString(mac.Sum(nil))
}

// AuthorizationHeader returns the value of the Authorization header.
func AuthorizationHeader(accessKey string, signedHeaders []string, signature string) string {
	return fmt.Sprintf("%s Access=%s, SignedHeaders=%s, Signature=%s",
		SignAlgorithm, accessKey, strings.Join(sortedLower(signedHeaders), ";"), signature)
}

// headerValue returns the trimmed value of the lowercase header name and
// whether req carries it.
func headerValue(req *http.Request, name string) (string, bool) {
	if name == "host" {
		host := req.Host
		if host == "" && req.URL != nil {
			host = req.URL.Host
		}
		return strings.TrimSpace(host), host != ""
	}
	values := req.Header.Values(name)
	if len(values) == 0 {
		return "", false
	}
	trimmed := make([]string, len(values))
	for i, v := range values {
		trimmed[i] = strings.TrimSpace(v)
	}
	return strings.Join(trimmed, ","), true
}

// payloadHash returns the hex SHA-256 of the request body without consuming it.
func payloadHash(req *http.Request) (string, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return EmptyBodySHA256, nil
	}
	var body io.ReadCloser
	if req.GetBody != nil {
		var err error
		if body, err = req.GetBody(); err != nil {
			return "", fmt.Errorf("read body: %w", err)
		}
	} else {
		buf, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return "", fmt.Errorf("read body: %w", err)
		}
		req.Body = io.NopCloser(bytes.NewReader(buf))
		body = io.NopCloser(bytes.NewReader(buf))
	}
	defer body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, body); err != nil {
		return "", fmt.Errorf("read body: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// percentEncode leaves A-Z a-z 0-9 - _ . ~ as they are and encodes every other
// byte as %XX with uppercase hex digits.
func percentEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0x0f])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

func sortedLower(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(strings.TrimSpace(n))
	}
	sort.Strings(out)
	return out
}

// signingRoundTripper signs a clone of every request with the current access
// keys before passing it on. It never retries, and it sends nothing signed
// with keys that the cloud refused (ErrUnauthorized) less than refusalPause
// ago: it answers the remembered refusal instead. The guard of each key is in
// Shared, so the pause holds for every client of the process. Refused keys
// that can be replaced (temporary keys) are dropped from their source.
type signingRoundTripper struct {
	keys    keySource
	shared  *Shared // nil: every request is sent (tests only)
	now     func() time.Time
	maxBody int64 // of a refused answer, read to describe it
	next    http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (rt *signingRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	op := operationFrom(req.Context())
	keys, err := rt.keys.keys(req.Context())
	if err != nil {
		closeRequestBody(req)
		return nil, err
	}
	guard := rt.shared.keyGuard(keys)
	defer guard.contacted(guard.firstContact(req.Context()))
	if err := guard.check(op, rt.now()); err != nil {
		closeRequestBody(req)
		return nil, err
	}
	clone := req.Clone(req.Context())
	signer := Signer{AccessKey: keys.accessKey, SecretKey: keys.secretKey, SecurityToken: keys.securityToken, Now: rt.now}
	if err := signer.Sign(clone); err != nil {
		closeRequestBody(req)
		return nil, err
	}
	resp, err := rt.next.RoundTrip(clone)
	if err == nil && guard != nil {
		switch refused, accepted := verdict(op, resp, rt.maxBody, rt.keys.secrets()); {
		case refused != nil:
			guard.refused(rt.now(), refused)
			rt.keys.refused(keys)
		case accepted:
			guard.accepted()
		}
	}
	return resp, err
}

// closeRequestBody honours the http.RoundTripper contract of closing the
// request body even when the request is never sent.
func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}
