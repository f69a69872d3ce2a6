// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

// Package modelartstest is a local fake of the ModelArts image API, of the
// parts of IAM the exporter uses and of the ECS metadata service's temporary
// credentials, for tests, benchmarks and demos.
//
// One [Server] answers all three on one base URL, so a client is pointed at it
// with the same URL as ModelArts, IAM and metadata endpoint:
//
//	GET  /v1/{project_id}/images/{id}    ShowImage
//	GET  /v1/{project_id}/images         ListImage
//	POST /v3/auth/tokens                 CreateToken (password method)
//	GET  /v3/projects?name={region}      ListProjects
//	PUT  /meta-data/latest/api/token     MetadataToken (session token)
//	GET  /openstack/latest/securitykey   GetSecurityKey (temporary credential)
//
// It follows Huawei's own code and documentation, citing them where they are
// followed, and offers each plausible reading where they leave a behaviour
// open. Quirks a client must cope with: a missing image is HTTP 400 with
// error_code ModelArts.6404 (or 404 with [Options].NotFoundAs404), every answer
// carries an X-Request-Id header, built-in images have no size, architectures
// arrive in lower case. A path no route has (a wrong base path, version or
// region) is answered by the API gateway with 404 APIG.0101 "The API does not
// exist or has not been published in the environment" and the request id in the
// body, before any authentication; a known path with another method is 405.
//
// # Authentication
//
// Every route but CreateToken requires either an X-Auth-Token issued by the
// server (401 ModelArts.0203 when unknown, ModelArts.0202 when expired,
// ModelArts.0201 when no credentials are sent at all), or an AK/SK signature
// (Authorization: SDK-HMAC-SHA256 ...). The signature is verified with this
// package's own implementation of the algorithm, over the request as it was
// received; X-Sdk-Date must be signed and within 15 minutes of the server's
// clock; temporary keys need their X-Security-Token; the query is decoded and
// re-encoded, so values sent with spaces as %20 (as huaweicloud-sdk-go-v3
// does) verify. A bad signature is 401 APIG.0301. With
// [Options].RefuseWith403 (the error code table's other reading), a bad
// signature is 403 ModelArts.0206 and an unknown or expired token 403
// ModelArts.0203. After [LockoutThreshold] consecutive failures for one access
// key, every request with that key is refused for [LockoutDuration], as the
// real gateway does, under either reading: tests use this to prove that a
// client never retries a refused signature. [Server.RefusedSignatures] counts
// the refusals per access key.
//
// # Temporary credentials
//
// The metadata routes need no credentials. PUT /meta-data/latest/api/token
// with X-Metadata-Token-Ttl-Seconds (60 to 21600) answers a session token as
// text/plain; GET /openstack/latest/securitykey answers
// {"credential":{"access":...,"secret":...,"securitytoken":...,"expires_at":"2020-01-08T03:50:07.574000Z"}}.
// [Options].MetadataSessionToken picks how session tokens are treated:
// optional (the default: a token sent must be valid), required (401 without a
// valid one), or a service without them that answers the token request with
// 404 or 405. Each temporary key is valid for [Options].TemporaryKeyTTL
// (default [DefaultTemporaryKeyTTL]); the service hands out the current one
// and issues a new one (access key, secret and security token) once the
// current one has less than half of its validity left, by the server's clock.
// Keys overlap: an older key stays valid until its own expiry, then gets 401
// (or 403 with RefuseWith403) like a bad signature, and counts towards the
// lockout. A temporary key must come with its own security token in a signed
// X-Security-Token header. [Server.TemporaryKeysIssued] counts the keys issued.
//
// # Listing and paging
//
// ListImage pages as the service does: offset only picks the page (page =
// offset / limit) and the answer starts at page × limit; limit defaults to
// 200 and is silently cut to [Options].MaxPageSize (default
// [DefaultMaxPageSize]). "size" is the page size (the limit), "current" the
// page index from 0 (from 1 with [Options].CurrentFromOne), "pages" is
// ceil(total / limit). A page that starts past the end is 400 ModelArts.6400
// "fromIndex(200) > toIndex(33)"; one that starts exactly at the end is empty.
// The order is sort_key (update_at, the default, create_at or name) in sort_dir
// (DESC, the default, or ASC), ties broken by id; a status change moves an image
// to the front of the default order, as on the service. Without type, the
// listing holds BUILD_IN images only, the documented default, or every image:
// see [Options].UntypedListing. workspace_id defaults to "0" as documented; an
// image with an empty workspace id counts as workspace "0". A limit below 1, a
// negative offset, an unknown sort_key or sort_dir or a value that is not a
// number is answered with 400 ModelArts.0104.
//
// # Faults
//
// [Server.AddFault] (or POST /-/sim/faults) makes the next matching requests
// fail in one of the ways a real cloud fails: error statuses with their
// documented bodies, HTML pages from a gateway, delays, malformed, truncated or
// oversized bodies, reset connections, unexpected field types, unknown fields,
// unknown enum values, and 200 answers that carry the wrong image, an empty
// object or a negative size. See [Fault].
//
// # Admin API
//
// For make demo and the end-to-end and load tests, which drive the simulator
// program over HTTP, the server also answers (tests in the same process call
// the Server's methods instead):
//
//	GET    /-/healthy
//	GET    /-/sim/images                 all images, in ListImage order
//	PUT    /-/sim/images/{id}/status     body: {"status":"ERROR","status_message":"..."}
//	POST   /-/sim/faults                 body: a Fault as JSON
//	DELETE /-/sim/faults                 removes all faults
//	POST   /-/sim/tokens/expire          expires every issued token
//
// The admin API is unauthenticated and meant for loopback testing only: never
// expose a simulator on a network others can reach.
package modelartstest
