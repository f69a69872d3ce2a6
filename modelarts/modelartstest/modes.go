// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"fmt"
	"os"
)

// This file holds the readings that can be switched while the server runs:
// behaviours Huawei documents but nobody here observed, or that the sources
// leave open.

// Readings of a ListImage without a type parameter, for Options.UntypedListing.
const (
	// UntypedBuildIn lists BUILD_IN images only: the documented default of type
	// (huaweicloud-sdk-python-v3 huaweicloud-sdk-modelarts/huaweicloudsdkmodelarts/v1/model/list_image_request.py,
	// terraform-provider-huaweicloud docs/data-sources/modelarts_notebook_images.md).
	UntypedBuildIn = "BUILD_IN"
	// UntypedAll lists images of every type.
	UntypedAll = "ALL"
	// UntypedListingEnv names the environment variable (BUILD_IN or ALL) that
	// gives the default of Options.UntypedListing, so that a whole test suite
	// can run under either reading.
	UntypedListingEnv = "MODELARTS_SIMULATOR_UNTYPED"
)

func checkUntypedListing(mode string) error {
	if mode != UntypedBuildIn && mode != UntypedAll {
		return fmt.Errorf("untyped listing %q: want %s or %s", mode, UntypedBuildIn, UntypedAll)
	}
	return nil
}

// defaultUntypedListing is UntypedListingEnv's value, else UntypedBuildIn. Any
// other value panics: it is a mistake of the test harness.
func defaultUntypedListing() string {
	mode, ok := os.LookupEnv(UntypedListingEnv)
	if !ok || mode == "" {
		return UntypedBuildIn
	}
	if err := checkUntypedListing(mode); err != nil {
		panic("modelartstest: environment variable " + UntypedListingEnv + ": " + err.Error())
	}
	return mode
}

// SetUntypedListing switches what a ListImage without type lists:
// UntypedBuildIn or UntypedAll.
func (s *Server) SetUntypedListing(mode string) error {
	if err := checkUntypedListing(mode); err != nil {
		return err
	}
	s.untypedAll.Store(mode == UntypedAll)
	return nil
}

func (s *Server) untypedListing() string {
	if s.untypedAll.Load() {
		return UntypedAll
	}
	return UntypedBuildIn
}

// SetRefuseWith403 switches how refused credentials are answered: 403
// ModelArts.0206 / ModelArts.0203 (on) or 401 APIG.0301 / ModelArts.0203 (off).
// See Options.RefuseWith403.
func (s *Server) SetRefuseWith403(on bool) { s.refuse403.Store(on) }

// Readings of the metadata service's session token, for
// Options.MetadataSessionToken. "optional" and "required" are the values of
// the ECS metadata option http_tokens (api-ecs, "Querying ECS Metadata
// Configuration"); 404 and 405 are the answers of services without session
// tokens, which huaweicloud-sdk-go-v3 core/auth/internal/metadata_accessor.go
// takes as "go on without one".
const (
	// SessionTokenOptional issues session tokens and accepts a securitykey
	// request without one; a token that is sent must be valid. The default.
	SessionTokenOptional = "optional"
	// SessionTokenRequired refuses a securitykey request without a valid
	// session token with 401.
	SessionTokenRequired = "required"
	// SessionToken404 and SessionToken405 answer the token request with 404
	// or 405 and ignore X-Metadata-Token.
	SessionToken404 = "404"
	SessionToken405 = "405"
)

func checkSessionTokenMode(mode string) error {
	switch mode {
	case SessionTokenOptional, SessionTokenRequired, SessionToken404, SessionToken405:
		return nil
	}
	return fmt.Errorf("metadata session token %q: want %s, %s, %s or %s", mode,
		SessionTokenOptional, SessionTokenRequired, SessionToken404, SessionToken405)
}

// MetadataSessionToken returns the metadata service's session token reading.
func (s *Server) MetadataSessionToken() string {
	s.meta.mu.Lock()
	defer s.meta.mu.Unlock()
	return s.meta.mode
}
