// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// DefaultMaxBodyBytes caps what is read of every answer but a ListImage page.
	DefaultMaxBodyBytes = 1 << 20
	// defaultMaxListBodyBytes caps a ListImage page: 1000 images (the most the
	// collector asks for) with multibyte names and descriptions of 512 characters.
	defaultMaxListBodyBytes = 8 << 20

	maxMessageLen   = 200 // of APIError.Message, in characters
	maxRequestIDLen = 128 // of APIError.RequestID, in bytes
)

// httpCaller is how a client sends a request: its HTTP client and settings.
type httpCaller struct {
	client    *http.Client
	userAgent string
	maxBody   int64
}

// request is one HTTP call of the client, to ModelArts, IAM or the metadata service.
type request struct {
	op      string // one of the Op* names, for the Observer and the errors
	method  string
	url     string
	body    []byte // nil: none
	header  map[string]string
	ok      []int           // the success statuses; any other answer is an error
	maxBody int64           // what is read of the answer at most; 0: httpCaller.maxBody
	secrets func() []string // scrubbed from errors; asked after the answer, which may renew a token
}

// send makes the call r and decodes a success answer into out (a *[]byte gets the body as is);
// it returns the answer, its body closed, for its headers. Every error is an *APIError.
func (c httpCaller) send(ctx context.Context, r request, out any) (*http.Response, error) {
	limit := cmp.Or(r.maxBody, c.maxBody)
	req, err := http.NewRequestWithContext(withOperation(ctx, r.op), r.method, r.url, bytes.NewReader(r.body)) // none: http.NoBody
	if err != nil {
		return nil, &APIError{Operation: r.op, Class: ErrUnreachable, Cause: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	for name, value := range r.header {
		req.Header.Set(name, value)
	}
	resp, err := c.client.Do(req)
	if apiErr := AsAPIError(err); apiErr != nil { // from the authentication: a refusal, or the answer it read
		return nil, apiErr
	} else if err != nil {
		return nil, &APIError{Operation: r.op, Class: ErrUnreachable, Cause: err}
	}
	defer func() { _ = resp.Body.Close() }()
	if !slices.Contains(r.ok, resp.StatusCode) {
		return nil, statusError(r.op, resp, limit, r.secrets())
	}
	return resp, decodeResponse(ctx, r.op, resp, limit, out)
}

// readBody reads at most limit bytes of body, announced as size bytes long (-1: unknown),
// and reports whether it was longer. A body of announced size fills one buffer, not one grown by doubling.
func readBody(body io.Reader, size, limit int64) ([]byte, bool, error) {
	var buf bytes.Buffer
	if size >= 0 && size <= limit {
		buf.Grow(int(size) + bytes.MinRead) // room for the read that finds the end
	}
	_, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	if b := buf.Bytes(); int64(len(b)) > limit {
		return b[:limit], true, nil
	}
	if err == nil && int64(buf.Len()) < size {
		err = io.ErrUnexpectedEOF // shorter than announced, whatever the transport says
	}
	return buf.Bytes(), false, err
}

// decodeResponse reads and decodes the body of a 2xx answer into out.
func decodeResponse(ctx context.Context, op string, resp *http.Response, limit int64, out any) error {
	body, tooLarge, err := readBody(resp.Body, resp.ContentLength, limit)
	switch {
	case err != nil:
		e := malformed(op, resp, fmt.Errorf("read body: %w", err))
		if ctxErr := ctx.Err(); ctxErr != nil { // the caller's deadline, not the answer, cut the body short
			e.Class, e.Cause = ErrUnreachable, errors.Join(ctxErr, err)
		}
		return e
	case tooLarge:
		return malformed(op, resp, fmt.Errorf("response body exceeds %d bytes", limit))
	}
	switch out := out.(type) {
	case *[]byte:
		*out = body
	case *ImageList: // validated once, by UnmarshalJSON, not before by json.Unmarshal
		err = out.UnmarshalJSON(body)
		for _, bad := range out.Invalid { // tell which answer they came in
			bad.Err.StatusCode, bad.Err.RequestID, bad.Err.URL = resp.StatusCode, requestID(resp, ""), calledURL(resp)
		}
	default:
		err = json.Unmarshal(body, out)
	}
	if err != nil {
		return malformed(op, resp, fmt.Errorf("decode body: %w", err))
	}
	return nil
}

// malformed is the error for an answer the client cannot believe.
func malformed(op string, resp *http.Response, cause error) *APIError {
	return &APIError{
		Operation: op, StatusCode: resp.StatusCode, RequestID: requestID(resp, ""), URL: calledURL(resp),
		Class: ErrMalformedResponse, Cause: cause,
	}
}

// statusError turns a non-success answer into an *APIError, reading up to limit bytes of its
// body. Secrets are redacted from its texts before they are cut, so that no part of one leaks.
func statusError(op string, resp *http.Response, limit int64, secrets []string) *APIError {
	body, _, _ := readBody(resp.Body, -1, limit)
	text := func(s string) string { return cleanText(redact(s, secrets), maxMessageLen) }
	e := &APIError{Operation: op, StatusCode: resp.StatusCode, URL: calledURL(resp)}
	var eb struct { // the union of the error bodies of ModelArts, the API gateway and IAM
		ErrorCode string `json:"error_code"`
		ErrorMsg  string `json:"error_msg"`
		RequestID string `json:"request_id"` // holds even when another field does not decode
		Error     *struct {
			Message string `json:"message"`
			Title   string `json:"title"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &eb); err == nil {
		e.ErrorCode = text(eb.ErrorCode)
		e.Message = text(eb.ErrorMsg)
		if eb.Error != nil && e.Message == "" {
			e.Message = text(cmp.Or(eb.Error.Message, eb.Error.Title))
		}
	} else {
		e.Message = summarizeNonJSON([]byte(redact(string(body), secrets)))
	}
	e.RequestID = requestID(resp, eb.RequestID, secrets...)
	e.Class = classify(resp.StatusCode, e.ErrorCode)
	return e
}

// redact replaces every occurrence of the (non-empty) secrets in s by <secret>.
func redact(s string, secrets []string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "<secret>")
		}
	}
	return s
}

// authAnswer returns, unless resp is a 2xx, its *APIError, its body read (at most limit bytes) and
// closed; and whether resp accepts the credentials: a 2xx, or a 4xx with another ModelArts error
// code than a refusal (ModelArts answers only past the signature check).
func authAnswer(op string, resp *http.Response, limit int64, secrets []string) (e *APIError, accepted bool) {
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil, true
	}
	defer func() { _ = resp.Body.Close() }()
	e = statusError(op, resp, limit, secrets)
	return e, resp.StatusCode/100 == 4 && e.Class != ErrUnauthorized && strings.HasPrefix(e.ErrorCode, "ModelArts.")
}

// classify maps an HTTP status and an error code to an error class.
func classify(status int, errorCode string) error {
	switch {
	case status == http.StatusNotFound && strings.HasPrefix(errorCode, "ModelArts."):
		return ErrNotFound
	case status == http.StatusNotFound:
		return ErrEndpoint
	case status == http.StatusBadRequest && (errorCode == "ModelArts.6404" || errorCode == "ModelArts.6797"):
		return ErrNotFound
	case status == http.StatusBadRequest && errorCode == "ModelArts.6400":
		return ErrEndOfList
	case errorCode == "ModelArts.0210" && (status == http.StatusUnauthorized || status == http.StatusForbidden):
		return ErrForbidden
	case status == http.StatusUnauthorized:
		return ErrUnauthorized
	case status == http.StatusForbidden && (errorCode == "ModelArts.0206" || isTokenRefusal(errorCode)): // 0206: the AK/SK signature
		return ErrUnauthorized
	case status == http.StatusForbidden:
		return ErrForbidden
	case status == http.StatusTooManyRequests:
		return ErrThrottled
	case status >= 500 && status <= 599:
		return ErrServer
	default:
		return ErrUnexpectedStatus
	}
}

// isTokenRefusal reports whether a 403 with errorCode refuses the token: expired or revoked.
func isTokenRefusal(errorCode string) bool {
	return errorCode == "ModelArts.0203" || errorCode == "ModelArts.2784"
}

// calledURL returns scheme://host/path of the request resp answers.
func calledURL(resp *http.Response) string {
	u := resp.Request.URL
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}

// requestID returns the X-Request-Id header, else bodyID, with the secrets redacted.
func requestID(resp *http.Response, bodyID string, secrets ...string) string {
	return cleanText(redact(cmp.Or(resp.Header.Get("X-Request-Id"), bodyID), secrets), maxRequestIDLen)
}

var (
	titleRE = regexp.MustCompile(`(?is)<title>(.*?)</title>`) // gateways answer 502 with an HTML page
	tagRE   = regexp.MustCompile(`<[^>]*>?|>`)                // a tag, unclosed at the end, or a stray ">"
)

// summarizeNonJSON describes a body that is not JSON by its start, or its HTML title; never with markup.
func summarizeNonJSON(body []byte) string {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '<' {
		return cleanText(string(trimmed), maxMessageLen)
	}
	if m := titleRE.FindSubmatch(trimmed); m != nil { // []rune: invalid UTF-8 as U+FFFD, byte by byte
		return cleanText(tagRE.ReplaceAllString(string([]rune(string(m[1]))), ""), maxMessageLen)
	}
	return ""
}

// cleanText collapses whitespace and control characters into single spaces,
// drops invalid UTF-8 and cuts s to at most maxChars characters ("..." marks a cut).
func cleanText(s string, maxChars int) string {
	cut := false
	if len(s) > 8*maxChars { // no need to look at more; 8 bytes a character is generous
		s, cut = s[:8*maxChars], true
	}
	blank := func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }
	s = strings.Join(strings.FieldsFunc(strings.ToValidUTF8(s, ""), blank), " ")
	if cut || utf8.RuneCountInString(s) > maxChars {
		return string([]rune(s)[:min(maxChars-3, utf8.RuneCountInString(s))]) + "..."
	}
	return s
}
