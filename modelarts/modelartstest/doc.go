// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

// Package modelartstest is a local fake of the ModelArts image API and of the
// parts of IAM the exporter uses, for tests, benchmarks and demos.
//
// One [Server] answers both APIs on one base URL, so a client is pointed at it
// with the same URL as ModelArts endpoint and as IAM endpoint:
//
//	GET  /v1/{project_id}/images/{id}   ShowImage
//	GET  /v1/{project_id}/images        ListImage
//	POST /v3/auth/tokens                CreateToken (password method)
//	GET  /v3/projects?name={region}     ListProjects
//
// It follows the contract of the public API references, including the quirks a
// client must cope with: a missing image is HTTP 400 with error_code
// ModelArts.6404 (or 404 with [Options].NotFoundAs404), every answer carries an
// X-Request-Id header, built-in images have no size, architectures arrive in
// lower case.
//
// # Authentication
//
// Every route but CreateToken requires either an X-Auth-Token issued by the
// server (401 ModelArts.0203 when unknown, ModelArts.0202 when expired,
// ModelArts.0201 when no credentials are sent at all), or an AK/SK signature
// (Authorization: SDK-HMAC-SHA256 ...). The signature is verified with this
// package's own implementation of the algorithm, over the request as it was
// received; X-Sdk-Date must be signed and within 15 minutes of the server's
// clock; temporary keys need their X-Security-Token. A bad signature is 401
// APIG.0301. After [LockoutThreshold] consecutive failures for one access key,
// every request with that key is refused for [LockoutDuration], as the real
// gateway does: tests use this to prove that a client never retries a refused
// signature.
//
// # Paging
//
// ListImage takes limit (default 200) and offset (records, default 0). A limit
// above [Options].MaxPageSize (default [DefaultMaxPageSize]) is silently cut to
// it, and "size" in the answer tells how many records came back. The order is
// stable: by create_at, then id (sort_dir=DESC reverses it). workspace_id
// defaults to "0" as documented; an image with an empty workspace id counts as
// workspace "0". A limit below 1, a negative offset or a value that is not a
// number is answered with 400 ModelArts.0104.
//
// # Faults
//
// [Server.AddFault] (or POST /-/sim/faults) makes the next matching requests
// fail in one of the ways a real cloud fails: error statuses with their
// documented bodies, HTML pages from a gateway, delays, malformed, truncated or
// oversized bodies, reset connections, unexpected field types, unknown fields
// and unknown enum values. See [Fault].
//
// # Admin API
//
// For the simulator program and end-to-end scripts, the server also answers:
//
//	GET    /-/healthy
//	GET    /-/sim/images                 all images, in ListImage order
//	GET    /-/sim/images/{id}
//	PUT    /-/sim/images/{id}            body: an image as JSON
//	PUT    /-/sim/images/{id}/status     body: {"status":"ERROR","status_message":"..."}
//	DELETE /-/sim/images/{id}
//	GET    /-/sim/faults
//	POST   /-/sim/faults                 body: a Fault as JSON, answers {"id":N}
//	DELETE /-/sim/faults                 removes all faults
//	DELETE /-/sim/faults/{id}
//	POST   /-/sim/tokens/expire          expires every issued token
//	GET    /-/sim/stats                  request counters
//	DELETE /-/sim/stats                  resets the counters
//
// The admin API is unauthenticated and meant for loopback testing only: never
// expose a simulator on a network others can reach.
package modelartstest
