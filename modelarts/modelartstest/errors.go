// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Error codes the server answers with.
const (
	CodeTokenMissing       = "ModelArts.0201"
	CodeTokenExpired       = "ModelArts.0202"
	CodeTokenInvalid       = "ModelArts.0203"
	CodeAKSKInvalid        = "ModelArts.0206"
	CodeTokenNotScoped     = "ModelArts.0207"
	CodeProjectMismatch    = "ModelArts.0210"
	CodeTokenRejected      = "ModelArts.2784"
	CodeNotAuthorized      = "ModelArts.0108"
	CodeWorkspacePolicy    = "ModelArts.0112"
	CodePermissionDenied   = "ModelArts.5014"
	CodeParameterError     = "ModelArts.0104"
	CodeInvalidRequest     = "ModelArts.6400"
	CodeImageNotFound      = "ModelArts.6404"
	CodeSystemBusy         = "ModelArts.4206"
	CodeInternalError      = "ModelArts.0001"
	CodeAPINotFound        = "APIG.0101"
	CodeSignatureFailed    = "APIG.0301"
	CodeThrottled          = "APIG.0308"
	CodeBackendUnavailable = "APIG.0202"
	CodeBackendTimeout     = "APIG.0203"
)

// Messages of the errors tests are likely to look for.
const (
	MsgSignatureFailed = "Incorrect IAM authentication information: verify aksk signature fail"
	MsgKeyLocked       = "Incorrect IAM authentication information: AK access failed to reach the limit,forbidden."
	MsgThrottled       = "The throttling threshold has been reached"
	MsgWrongPassword   = "The username or password is wrong."
	// MsgAPINotFound is APIG.0101's message (opentelekomcloud-docs/modelarts
	// umn/source/troubleshooting/inference_deployment/service_prediction/error_apig.xxxx_occurred_in_a_prediction_failure.rst).
	MsgAPINotFound = "The API does not exist or has not been published in the environment"
)

// docKey is an HTTP status and an error code: the table below lists some codes
// under two statuses with two messages.
type docKey struct {
	status int
	code   string
}

// docMessages are the messages of the codes the server uses, from
// opentelekomcloud-docs/modelarts api-ref/source/appendix/error_codes.rst.
// "{}" stands for the table's placeholders ({0}, "{} {}", %s) and is filled
// with the operation's name.
var docMessages = map[docKey]string{
	{http.StatusUnauthorized, CodeTokenMissing}:    "Token doesn't exist.",
	{http.StatusUnauthorized, CodeTokenExpired}:    "Invalid token header because the token has expired.",
	{http.StatusUnauthorized, CodeTokenInvalid}:    "Invalid token.",
	{http.StatusUnauthorized, CodeTokenNotScoped}:  "Token must contain project info of current region.",
	{http.StatusUnauthorized, CodeWorkspacePolicy}: "Failed to execute the policy.",
	{http.StatusForbidden, CodeTokenInvalid}:       "Invalid token.",
	{http.StatusForbidden, CodeAKSKInvalid}:        "Invalid AK/SK.",
	{http.StatusForbidden, CodeTokenRejected}:      "InvalidToken",
	{http.StatusForbidden, CodeNotAuthorized}:      "You are not authorized to perform the ({}) operation.",
	{http.StatusForbidden, CodeWorkspacePolicy}:    "Policy doesn't allow {} to be performed.",
	{http.StatusForbidden, CodePermissionDenied}:   "Permission deny",
	{http.StatusForbidden, CodeProjectMismatch}:    "The project id in the request URL does not match the token.",
	{http.StatusBadRequest, CodeParameterError}:    "Parameter error.",
	{http.StatusTooManyRequests, CodeSystemBusy}:   "Excessive number of requests to {}.",
	{http.StatusTooManyRequests, "ModelArts.2799"}: "TooManyRequests",
	{http.StatusTooManyRequests, "ModelArts.6101"}: "The system is busy now. Please try again later.",
}

// docMessage is the documented message of code under status for operation
// op, or "" when the table has none.
func docMessage(status int, code, op string) string {
	return strings.ReplaceAll(docMessages[docKey{status, code}], "{}", op)
}

const contentTypeJSON = "application/json;charset=UTF-8"

// mustJSON encodes values that cannot fail to encode (no channels, funcs or
// cyclic data).
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("modelartstest: encode %T: %v", v, err))
	}
	return b
}

func jsonReply(status int, v any) reply {
	return reply{status: status, contentType: contentTypeJSON, body: mustJSON(v)}
}

type modelArtsErrorBody struct {
	ErrorCode string `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
	RequestID string `json:"request_id,omitempty"`
}

// modelArtsError is the body of ModelArts' own errors.
func modelArtsError(status int, code, msg string) reply {
	return jsonReply(status, modelArtsErrorBody{ErrorCode: code, ErrorMsg: msg})
}

// gatewayError is the body of the API gateway's errors, which add request_id.
func gatewayError(status int, code, msg, requestID string) reply {
	return jsonReply(status, modelArtsErrorBody{ErrorCode: code, ErrorMsg: msg, RequestID: requestID})
}

type iamErrorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Title   string `json:"title"`
	} `json:"error"`
}

// iamError is the body of IAM's (Keystone's) errors.
func iamError(status int, msg string) reply {
	var b iamErrorBody
	b.Error.Code = status
	b.Error.Message = msg
	b.Error.Title = http.StatusText(status)
	return jsonReply(status, b)
}

// errorReply answers status with code and msg in the body format the code
// belongs to: the gateway's for APIG codes, IAM's for IAM operations without
// a code, plain text for the metadata service without a code, ModelArts'
// otherwise.
func errorReply(c *call, status int, code, msg string) reply {
	switch {
	case strings.HasPrefix(code, "APIG."):
		return gatewayError(status, code, msg, c.requestID)
	case code == "" && isMetadataOperation(c.op):
		return metadataError(status, msg)
	case code == "" && isIAMOperation(c.op):
		return iamError(status, msg)
	default:
		return modelArtsError(status, code, msg)
	}
}

func isIAMOperation(op string) bool { return op == OpCreateToken || op == OpListProjects }

// documentedError is the usual error code and message for a status.
func documentedError(op string, status int) (code, msg string) {
	if isMetadataOperation(op) { // no gateway in front of 169.254.169.254
		return "", http.StatusText(status)
	}
	if isIAMOperation(op) {
		switch status {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusGatewayTimeout:
		default:
			return "", iamMessage(status)
		}
	}
	switch status {
	case http.StatusBadRequest:
		code = CodeParameterError
	case http.StatusUnauthorized:
		code = CodeTokenInvalid
	case http.StatusForbidden:
		code = CodeProjectMismatch
	case http.StatusNotFound:
		return CodeImageNotFound, "Image not found."
	case http.StatusTooManyRequests:
		return CodeThrottled, MsgThrottled
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return CodeBackendUnavailable, "Backend unavailable"
	case http.StatusGatewayTimeout:
		return CodeBackendTimeout, "Backend timeout"
	default:
		return CodeInternalError, http.StatusText(status)
	}
	return code, docMessage(status, code, op)
}

func iamMessage(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "The request you have made requires authentication."
	case http.StatusForbidden:
		return "You are not authorized to perform the requested action."
	case http.StatusNotFound:
		return "Could not find the requested resource."
	case http.StatusBadRequest:
		return "The request body is invalid."
	default:
		return http.StatusText(status)
	}
}
