// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"cmp"
	"errors"
	"fmt"
)

// Error classes, as classify maps answers to them (OTC ModelArts API
// reference, appendix "Error Codes"). Every error the client returns wraps
// exactly one; callers test with errors.Is.
var (
	// ErrNotFound: no such resource: HTTP 404 with a ModelArts.* error code,
	// or 400 with ModelArts.6404 or ModelArts.6797.
	ErrNotFound = errors.New("not found")
	// ErrEndpoint: HTTP 404 from the API gateway (APIG.0101, or no ModelArts
	// error code): the endpoint or region is wrong.
	ErrEndpoint = errors.New("no such API at this endpoint")
	// ErrUnauthorized: HTTP 401, or 403 with ModelArts.0203 or ModelArts.2784
	// (invalid token) or ModelArts.0206 (invalid AK/SK); or not sent because
	// the credentials were refused a moment ago or their file cannot be read.
	ErrUnauthorized = errors.New("credentials refused")
	// ErrForbidden: any other HTTP 403 (e.g. ModelArts.0108, 0112, 5014), or
	// ModelArts.0210 with 401 or 403: the project id does not match the
	// credentials, which are good for other projects.
	ErrForbidden = errors.New("forbidden")
	// ErrEndOfList: HTTP 400 ModelArts.6400 to ListImage: the page starts past
	// the end of the listing ("fromIndex(200) > toIndex(33)").
	ErrEndOfList = errors.New("page past the end of the listing")
	// ErrNoProject: the project id is not configured and IAM lists no project
	// named after the region for these credentials; retrying cannot fix it.
	ErrNoProject = errors.New("no project for the region")
	// ErrThrottled: HTTP 429 (APIG.0308, ModelArts.2799/4206/6101).
	ErrThrottled = errors.New("throttled")
	// ErrServer: HTTP 5xx.
	ErrServer = errors.New("server error")
	// ErrUnexpectedStatus: any other status code.
	ErrUnexpectedStatus = errors.New("unexpected status")
	// ErrMalformedResponse: the body could not be decoded, was truncated or too large.
	ErrMalformedResponse = errors.New("malformed response")
	// ErrUnreachable: no HTTP answer at all (DNS, connection refused or reset, TLS, timeout).
	ErrUnreachable = errors.New("unreachable")
)

// APIError describes one failed API call, without credentials; it wraps one of the classes above.
type APIError struct {
	Operation  string // e.g. "ShowImage"
	StatusCode int    // 0 when no response was received
	ErrorCode  string // e.g. "ModelArts.6404", "APIG.0308"
	Message    string // error_msg from the body, cut to a sane length
	RequestID  string // X-Request-Id header, or request_id from the body
	URL        string // scheme://host/path called; "" when no answer arrived
	Class      error  // one of the Err* values
	Cause      error  // underlying transport or decode error, may be nil
}

func (e *APIError) Error() string {
	s := e.Operation + ": " + e.Class.Error()
	if e.StatusCode != 0 {
		s += fmt.Sprintf(" (HTTP %d", e.StatusCode)
		if e.ErrorCode != "" {
			s += " " + e.ErrorCode
		}
		if e.Message != "" {
			s += fmt.Sprintf(" %q", e.Message)
		}
		s += ")"
	}
	if e.RequestID != "" {
		s += " request_id=" + e.RequestID
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	if e.Class == ErrEndpoint {
		if e.URL != "" {
			s += ": called " + e.URL
		}
		s += "; check " + cmp.Or(endpointSetting[e.Operation], "modelarts_endpoint and region")
	}
	return s
}

// endpointSetting names the setting of the endpoint of each operation but ModelArts'.
var endpointSetting = map[string]string{
	OpCreateToken: "iam_endpoint and region", OpListProjects: "iam_endpoint and region",
	OpMetadataToken: "metadata_endpoint", OpSecurityKey: "metadata_endpoint",
}

// FromIAM reports whether the call failed at IAM or the metadata service
// rather than at ModelArts.
func (e *APIError) FromIAM() bool { return endpointSetting[e.Operation] != "" }

// Unwrap lets errors.Is match both the class and the cause (e.g. context.DeadlineExceeded).
func (e *APIError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Class, e.Cause}
	}
	return []error{e.Class}
}

// AsAPIError returns the *APIError in err's chain, or nil.
func AsAPIError(err error) *APIError {
	var e *APIError
	if errors.As(err, &e) {
		return e
	}
	return nil
}
