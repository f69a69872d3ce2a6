// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// DefaultMaxBodyBytes caps what is read of one response body when
	// Config.MaxBodyBytes is 0.
	DefaultMaxBodyBytes = 8 << 20

	// maxMessageLen bounds APIError.Message, in characters.
	maxMessageLen = 200
	// maxRequestIDLen bounds APIError.RequestID, in bytes.
	maxRequestIDLen = 128
)

// errorCodes that mean "image not found" although they come with HTTP 400.
var notFoundCodes = map[string]bool{
	"ModelArts.6404": true,
	"ModelArts.6797": true,
}

// errorBody is the union of the error bodies ModelArts, the API gateway and IAM send.
type errorBody struct {
	ErrorCode string `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
	RequestID string `json:"request_id"`
	Error     *struct {
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
		Title   string          `json:"title"`
	} `json:"error"`
}

// readBody reads at most limit bytes of body. It reports whether the body was longer.
func readBody(body io.Reader, limit int64) ([]byte, bool, error) {
	buf, err := io.ReadAll(io.LimitReader(body, limit+1))
	if int64(len(buf)) > limit {
		return buf[:limit], true, nil
	}
	return buf, false, err
}

// decodeResponse reads and decodes the body of a 2xx answer into out.
func decodeResponse(ctx context.Context, op string, resp *http.Response, limit int64, out any) error {
	body, tooLarge, err := readBody(resp.Body, limit)
	switch {
	case err != nil:
		return bodyReadError(ctx, op, resp, err)
	case tooLarge:
		return &APIError{
			Operation: op, StatusCode: resp.StatusCode, RequestID: requestID(resp, nil),
			Class: ErrMalformedResponse, Cause: fmt.Errorf("response body exceeds %d bytes", limit),
		}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &APIError{
			Operation: op, StatusCode: resp.StatusCode, RequestID: requestID(resp, body),
			Class: ErrMalformedResponse, Cause: fmt.Errorf("decode body: %w", err),
		}
	}
	return nil
}

// bodyReadError classifies a failure while reading a body: the caller's
// deadline or cancellation makes it ErrUnreachable (keeping the context
// error), anything else means the body was cut short.
func bodyReadError(ctx context.Context, op string, resp *http.Response, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return &APIError{
			Operation: op, StatusCode: resp.StatusCode, RequestID: requestID(resp, nil),
			Class: ErrUnreachable, Cause: errors.Join(ctxErr, err),
		}
	}
	return &APIError{
		Operation: op, StatusCode: resp.StatusCode, RequestID: requestID(resp, nil),
		Class: ErrMalformedResponse, Cause: fmt.Errorf("read body: %w", err),
	}
}

// statusError turns a non-success answer into an *APIError. The body is read
// up to limit bytes and parsed as one of the documented error bodies when possible.
func statusError(op string, resp *http.Response, limit int64) *APIError {
	body, _, _ := readBody(resp.Body, limit)
	e := &APIError{Operation: op, StatusCode: resp.StatusCode}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err == nil {
		e.ErrorCode = cleanText(eb.ErrorCode, maxMessageLen)
		e.Message = cleanText(eb.ErrorMsg, maxMessageLen)
		if eb.Error != nil && e.Message == "" {
			e.Message = cleanText(firstNonEmpty(eb.Error.Message, eb.Error.Title), maxMessageLen)
		}
	} else {
		e.Message = summarizeNonJSON(body)
	}
	e.RequestID = requestID(resp, body)
	e.Class = classify(resp.StatusCode, e.ErrorCode)
	return e
}

// classify maps an HTTP status and a ModelArts error code to an error class.
func classify(status int, errorCode string) error {
	switch {
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusBadRequest && notFoundCodes[errorCode]:
		return ErrNotFound
	case status == http.StatusUnauthorized:
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

// requestID returns the X-Request-Id header, else the request_id of a JSON body.
func requestID(resp *http.Response, body []byte) string {
	if id := resp.Header.Get("X-Request-Id"); id != "" {
		return cleanText(id, maxRequestIDLen)
	}
	if len(body) == 0 {
		return ""
	}
	var eb struct {
		RequestID string `json:"request_id"`
	}
	if json.Unmarshal(body, &eb) != nil {
		return ""
	}
	return cleanText(eb.RequestID, maxRequestIDLen)
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
	lower := bytes.ToLower(trimmed)
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
		return truncateRunes(s, maxChars-3) + "..."
	}
	return s
}

// truncateRunes returns the first n characters of s.
func truncateRunes(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
