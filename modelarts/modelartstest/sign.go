// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// This file is the server's own implementation of SDK-HMAC-SHA256, written
// from the published description; it shares no code with the client's signer.

const (
	signAlgorithm   = "SDK-HMAC-SHA256"
	sdkDateLayout   = "20060102T150405Z"
	headerSdkDate   = "X-Sdk-Date"
	unsignedPayload = "UNSIGNED-PAYLOAD"
)

// authorization is a parsed "Authorization: SDK-HMAC-SHA256 ..." header.
type authorization struct {
	access        string
	signedHeaders []string
	signature     string
}

var errBadAuthorization = errors.New("malformed Authorization header")

// parseAuthorization reads
// "SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex".
func parseAuthorization(v string) (authorization, error) {
	rest, ok := strings.CutPrefix(v, signAlgorithm+" ")
	if !ok {
		return authorization{}, errBadAuthorization
	}
	var a authorization
	for part := range strings.SplitSeq(rest, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return authorization{}, errBadAuthorization
		}
		switch name {
		case "Access":
			a.access = value
		case "SignedHeaders":
			a.signedHeaders = strings.Split(value, ";")
		case "Signature":
			a.signature = value
		}
	}
	if a.access == "" || len(a.signedHeaders) == 0 || a.signature == "" {
		return authorization{}, errBadAuthorization
	}
	return a, nil
}

func (a authorization) signs(header string) bool {
	for _, h := range a.signedHeaders {
		if h == header {
			return true
		}
	}
	return false
}

// computeSignature is hex(HMAC-SHA256(secret, StringToSign)) for r as received.
// bodyHash is hex(sha256(body)) or UNSIGNED-PAYLOAD.
func computeSignature(r *http.Request, signedHeaders []string, bodyHash, secret string) (string, error) {
	canonical, err := canonicalRequest(r, signedHeaders, bodyHash)
	if err != nil {
		return "", err
	}
	toSign := stringToSign(canonical, r.Header.Get(headerSdkDate))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(toSign))
	return hex.EncodeToString(mac.Sum(nil)), nil
}

func stringToSign(canonicalRequest, sdkDate string) string {
	return signAlgorithm + "\n" + sdkDate + "\n" + hexSHA256([]byte(canonicalRequest))
}

// canonicalRequest is METHOD, URI, query, headers, signed headers and body hash,
// one per line.
func canonicalRequest(r *http.Request, signedHeaders []string, bodyHash string) (string, error) {
	query, err := canonicalQuery(r.URL.RawQuery)
	if err != nil {
		return "", err
	}
	return strings.Join([]string{
		r.Method,
		canonicalURI(r.URL.EscapedPath()),
		query,
		canonicalHeaders(r, signedHeaders),
		strings.Join(signedHeaders, ";"),
		bodyHash,
	}, "\n"), nil
}

// canonicalURI encodes each segment of the path and ends it with "/".
func canonicalURI(escapedPath string) string {
	segments := strings.Split(escapedPath, "/")
	for i, seg := range segments {
		if raw, err := url.PathUnescape(seg); err == nil {
			seg = raw
		}
		segments[i] = encodeComponent(seg)
	}
	uri := strings.Join(segments, "/")
	if !strings.HasSuffix(uri, "/") {
		uri += "/"
	}
	return uri
}

// canonicalQuery sorts the keys and each key's values and encodes both.
func canonicalQuery(rawQuery string) (string, error) {
	values, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", err
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var pairs []string
	for _, k := range keys {
		vs := append([]string(nil), values[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			pairs = append(pairs, encodeComponent(k)+"="+encodeComponent(v))
		}
	}
	return strings.Join(pairs, "&"), nil
}

// canonicalHeaders is "name:value\n" for each signed header, in the order the
// client listed them (sorted, per the algorithm). A header sent several times
// has its values sorted and joined by ","; a signed header that is absent has
// an empty value. Host is the Host the request arrived with.
func canonicalHeaders(r *http.Request, signedHeaders []string) string {
	var b strings.Builder
	for _, name := range signedHeaders {
		values := r.Header.Values(name)
		if name == "host" {
			values = []string{r.Host}
		}
		trimmed := make([]string, len(values))
		for i, v := range values {
			trimmed[i] = strings.TrimSpace(v)
		}
		sort.Strings(trimmed)
		b.WriteString(name + ":" + strings.Join(trimmed, ",") + "\n")
	}
	return b.String()
}

// encodeComponent percent-encodes everything but A-Z a-z 0-9 - _ . ~, with
// upper-case hex digits.
func encodeComponent(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
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
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
