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
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// DefaultMaxBodyBytes caps what is read of an answer of ShowImage (about
	// 1 KB) and of IAM (a token, a project list).
	DefaultMaxBodyBytes = 1 << 20
	// defaultMaxListBodyBytes caps what is read of a ListImage page: 1000
	// images (the most the collector asks for) weigh 0.5 to 1 MiB, 8 MiB still
	// holds them with name and description (512 characters each) multibyte.
	defaultMaxListBodyBytes = 8 << 20

	maxMessageLen   = 200 // of APIError.Message, in characters
	maxRequestIDLen = 128 // of APIError.RequestID, in bytes

	// codeProjectMismatch: the project id in the URL does not match the
	// credentials, which are good: ErrForbidden, about that project only.
	codeProjectMismatch = "ModelArts.0210"
	// codeEndOfList answers a ListImage page that starts past the end of the listing.
	codeEndOfList = "ModelArts.6400"
)

// Error codes that decide the class of an answer (OTC ModelArts API
// reference, appendix "Error Codes"): notFoundCodes come with HTTP 400,
// refusedCodes (invalid token 0203, 2784; invalid AK/SK 0206) with 403.
var (
	notFoundCodes = map[string]bool{"ModelArts.6404": true, "ModelArts.6797": true}
	refusedCodes  = map[string]bool{"ModelArts.0203": true, "ModelArts.0206": true, "ModelArts.2784": true}
)

// request is one HTTP call of the client, to ModelArts or to IAM.
type request struct {
	op        string // one of the Op* names, for the Observer and the errors
	method    string
	url       string
	body      []byte // nil: none
	header    map[string]string
	userAgent string
	ok        []int // the success statuses; any other answer is an error
	maxBody   int64 // what is read of the answer at most
	// secrets returns what is scrubbed from an error that quotes the answer;
	// asked after the answer, which may come to a renewed token.
	secrets func() []string
}

// send makes the call r with client and decodes a success answer into out
// (a *[]byte gets the body as it is). It returns the answer, its body read
// and closed, for its headers. Every error is an *APIError.
func send(ctx context.Context, client *http.Client, r request, out any) (*http.Response, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(withOperation(ctx, r.op), r.method, r.url, body)
	if err != nil {
		return nil, &APIError{Operation: r.op, Class: ErrUnreachable, Cause: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", r.userAgent)
	for name, value := range r.header {
		req.Header.Set(name, value)
	}
	if err := ctx.Err(); err != nil { // e.g. the scrape ended while waiting for the rate limit
		return nil, &APIError{Operation: r.op, Class: ErrUnreachable, Cause: err}
	}
	resp, err := client.Do(req)
	if apiErr := AsAPIError(err); apiErr != nil { // from the authentication, e.g. IAM refused the password
		return nil, apiErr
	} else if err != nil {
		return nil, &APIError{Operation: r.op, Class: ErrUnreachable, Cause: err}
	}
	defer func() { _ = resp.Body.Close() }()
	if !slices.Contains(r.ok, resp.StatusCode) {
		return nil, statusError(r.op, resp, r.maxBody, r.secrets())
	}
	return resp, decodeResponse(ctx, r.op, resp, r.maxBody, out)
}

// errorBody is the union of the error bodies ModelArts, the API gateway and IAM send.
type errorBody struct {
	ErrorCode string `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
	RequestID string `json:"request_id"`
	Error     *struct {
		Message string `json:"message"`
		Title   string `json:"title"`
	} `json:"error"`
}

// readBody reads at most limit bytes of body, announced as size bytes long
// (-1: unknown). It reports whether the body was longer.
func readBody(body io.Reader, size, limit int64) ([]byte, bool, error) {
	r := io.LimitReader(body, limit+1)
	var buf []byte
	var err error
	if size < 0 || size > limit {
		buf, err = io.ReadAll(r)
	} else { // fill a buffer of the announced size, not one grown by doubling
		buf = make([]byte, size)
		var n int
		if n, err = io.ReadFull(r, buf); err != nil { // shorter than announced
			buf = buf[:n]
		} else { // nothing more, unless longer than announced
			var rest []byte
			rest, err = io.ReadAll(r)
			buf = append(buf, rest...)
		}
	}
	if int64(len(buf)) > limit {
		return buf[:limit], true, nil
	}
	return buf, false, err
}

// decodeResponse reads and decodes the body of a 2xx answer into out.
func decodeResponse(ctx context.Context, op string, resp *http.Response, limit int64, out any) error {
	body, tooLarge, err := readBody(resp.Body, resp.ContentLength, limit)
	switch {
	case err != nil:
		return bodyReadError(ctx, op, resp, err)
	case tooLarge:
		return malformed(op, resp, fmt.Errorf("response body exceeds %d bytes", limit))
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = body
		return nil
	}
	decode := json.Unmarshal
	if list, ok := out.(*ImageList); ok { // validated and decoded once, not once more by a json.Unmarshaler
		decode = func(b []byte, _ any) error { return list.decodeBody(b) }
	}
	if err := decode(body, out); err != nil {
		return malformed(op, resp, fmt.Errorf("decode body: %w", err))
	}
	if list, ok := out.(*ImageList); ok && len(list.Invalid) > 0 {
		id := requestID(resp, "") // tell which answer they came in
		for _, bad := range list.Invalid {
			bad.Err.StatusCode, bad.Err.RequestID, bad.Err.URL = resp.StatusCode, id, calledURL(resp)
		}
	}
	return nil
}

// malformed is the error for the answer resp to a call of operation op that
// the client cannot believe, for the reason cause.
func malformed(op string, resp *http.Response, cause error) *APIError {
	return &APIError{
		Operation: op, StatusCode: resp.StatusCode, RequestID: requestID(resp, ""), URL: calledURL(resp),
		Class: ErrMalformedResponse, Cause: cause,
	}
}

// bodyReadError classifies a failure while reading a body: the caller's
// deadline or cancellation makes it ErrUnreachable (keeping the context
// error), anything else means the body was cut short.
func bodyReadError(ctx context.Context, op string, resp *http.Response, err error) error {
	e := &APIError{Operation: op, StatusCode: resp.StatusCode, RequestID: requestID(resp, ""), Class: ErrMalformedResponse, Cause: fmt.Errorf("read body: %w", err)}
	if ctxErr := ctx.Err(); ctxErr != nil {
		e.Class, e.Cause = ErrUnreachable, errors.Join(ctxErr, err)
	}
	return e
}

// statusError turns a non-success answer into an *APIError. The body is read
// up to limit bytes and parsed as one of the documented error bodies when possible.
//
// The secrets are replaced by <secret> in every text taken from the answer,
// before it is cut to length: a server that quotes back the credentials it
// received must not get them, or a part of them, into errors and logs.
func statusError(op string, resp *http.Response, limit int64, secrets []string) *APIError {
	body, _, _ := readBody(resp.Body, -1, limit)
	text := func(s string) string { return cleanText(redact(s, secrets), maxMessageLen) }
	e := &APIError{Operation: op, StatusCode: resp.StatusCode, URL: calledURL(resp)}
	var eb errorBody // its request_id holds even when another field does not decode
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

// verdict tells what resp, the answer to a request of operation op, says
// of the credentials: refused is its error when it refuses them
// (ErrUnauthorized); accepted is true for a 2xx, or a 4xx with a ModelArts
// error code that is no refusal (ModelArts answers only past the signature
// check, the gateway's 404, 429 and 5xx come before it). It reads the body
// of a 4xx only (at most limit bytes), and gives resp a body that reads the same.
func verdict(op string, resp *http.Response, limit int64, secrets []string) (refused *APIError, accepted bool) {
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		return nil, true
	case resp.StatusCode < 400 || resp.StatusCode > 499:
		return nil, false
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	rest := resp.Body
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), rest), rest}

	answer := *resp
	answer.Body = io.NopCloser(bytes.NewReader(body))
	e := statusError(op, &answer, limit, secrets)
	if e.Class == ErrUnauthorized {
		return e, false
	}
	return nil, strings.HasPrefix(e.ErrorCode, "ModelArts.")
}

// classify maps an HTTP status and an error code (ModelArts, API gateway or
// none) to an error class, as the comments of the Err* values say.
func classify(status int, errorCode string) error {
	switch {
	case status == http.StatusNotFound && strings.HasPrefix(errorCode, "ModelArts."):
		return ErrNotFound
	case status == http.StatusNotFound:
		return ErrEndpoint
	case status == http.StatusBadRequest && notFoundCodes[errorCode]:
		return ErrNotFound
	case status == http.StatusBadRequest && errorCode == codeEndOfList:
		return ErrEndOfList
	case errorCode == codeProjectMismatch && (status == http.StatusUnauthorized || status == http.StatusForbidden):
		return ErrForbidden
	case status == http.StatusUnauthorized:
		return ErrUnauthorized
	case status == http.StatusForbidden && refusedCodes[errorCode]:
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

// calledURL returns scheme://host/path of the request resp answers: no
// query, no user information; "" when resp does not tell.
func calledURL(resp *http.Response) string {
	if resp.Request == nil || resp.Request.URL == nil {
		return ""
	}
	u := resp.Request.URL
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}

// requestID returns the X-Request-Id header, else bodyID (the request_id
// of an error body), with the secrets redacted.
func requestID(resp *http.Response, bodyID string, secrets ...string) string {
	return cleanText(redact(cmp.Or(resp.Header.Get("X-Request-Id"), bodyID), secrets), maxRequestIDLen)
}

// summarizeNonJSON gives a short description of a body that is not JSON:
// the <title> of an HTML page (gateways answer 502 with one), or the start of
// a plain-text body. It never returns markup.
func summarizeNonJSON(body []byte) string {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return ""
	}
	if trimmed[0] != '<' {
		return cleanText(string(trimmed), maxMessageLen)
	}
	// Lower-case ASCII byte by byte: bytes.ToLower would turn invalid UTF-8
	// into longer replacement characters, and the indexes would not fit trimmed.
	lower := make([]byte, len(trimmed))
	for i, c := range trimmed {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	start := bytes.Index(lower, []byte("<title>"))
	if start < 0 {
		return ""
	}
	start += len("<title>")
	end := bytes.Index(lower[start:], []byte("</title>"))
	if end < 0 {
		return ""
	}
	return cleanText(stripTags(string(trimmed[start:start+end])), maxMessageLen)
}

// stripTags drops everything between "<" and ">", and stray angle brackets:
// a title such as "<b>502</b> Bad Gateway" must not bring markup into a log line.
func stripTags(s string) string {
	var b strings.Builder
	inTag := false
	for _, r := range s {
		switch {
		case r == '<':
			inTag = true
		case r == '>':
			inTag = false
		case !inTag:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// cleanText collapses whitespace and control characters into single spaces,
// drops invalid UTF-8 and cuts s to at most maxChars characters ("..." marks a cut).
func cleanText(s string, maxChars int) string {
	cut := false
	if len(s) > 8*maxChars { // no need to look at more; 8 bytes a character is generous
		s, cut = s[:8*maxChars], true
	}
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if cut || utf8.RuneCountInString(s) > maxChars {
		return string([]rune(s)[:min(maxChars-3, utf8.RuneCountInString(s))]) + "..."
	}
	return s
}
