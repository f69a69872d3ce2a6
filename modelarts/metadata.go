// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Temporary access keys from the ECS metadata service (an agency attached to
// the server), got as huaweicloud-sdk-go-v3 does
// (core/auth/internal/metadata_accessor.go: an optional session token, then
// the keys) and refreshed as core/auth/provider/metadata_provider.go does.
const (
	metadataTokenPath     = "/meta-data/latest/api/token"
	securityKeyPath       = "/openstack/latest/securitykey"
	metadataTokenTTL      = "21600"          // seconds: the SDK's six hours
	metadataRefreshMargin = 40 * time.Minute // the SDK refreshes keys when less remains
)

// temporaryKeys are access keys from the metadata service.
type temporaryKeys struct {
	keys      accessKeys
	expiresAt time.Time // as the service tells
	refreshAt time.Time
}

func (k *temporaryKeys) due(now time.Time) bool { return k == nil || !now.Before(k.refreshAt) }

func (k *temporaryKeys) usable(now time.Time) bool {
	return k != nil && now.Before(k.expiresAt.Add(-tokenExpirySkew))
}

// metadataProvider caches the temporary keys of one metadata endpoint for the process.
type metadataProvider struct {
	endpoint  string
	transport http.RoundTripper // direct: 169.254.169.254 must not go through a proxy
	keys      renewing[*temporaryKeys]
}

// metadataProvider returns the provider of endpoint.
func (s *Shared) metadataProvider(endpoint string, now func() time.Time) *metadataProvider {
	return sharedEntry(s, endpoint, nil, func() *metadataProvider {
		transport := baseTransport(nil)
		if t, ok := transport.(*http.Transport); ok {
			t.Proxy = nil
		}
		return &metadataProvider{endpoint: endpoint, transport: transport, keys: newRenewing[*temporaryKeys](OpSecurityKey, now)}
	})
}

// fetchKeys asks the service for keys through c, to be refreshed metadataRefreshMargin
// before they expire or at half their lifetime, whichever is earlier.
func (p *metadataProvider) fetchKeys(ctx context.Context, c httpCaller) (_ *temporaryKeys, err error) {
	defer func() {
		if e := AsAPIError(err); e != nil { // every error of send is one
			cause := errors.New("the ECS metadata service could not give credentials")
			if e.Cause != nil {
				cause = fmt.Errorf("%w: %w", cause, e.Cause)
			}
			e.Cause = cause
		}
	}()
	start := p.keys.now()
	session, err := p.sessionToken(ctx, c)
	if err != nil {
		return nil, err
	}
	r := request{
		op: OpSecurityKey, method: http.MethodGet, url: p.endpoint + securityKeyPath,
		ok: []int{http.StatusOK}, secrets: func() []string { return []string{session} },
	}
	if session != "" {
		r.header = map[string]string{"X-Metadata-Token": session}
	}
	var body struct {
		Credential struct {
			Access        string `json:"access"`
			Secret        string `json:"secret"`
			SecurityToken string `json:"securitytoken"`
			ExpiresAt     string `json:"expires_at"`
		} `json:"credential"`
	}
	resp, err := c.send(ctx, r, &body)
	if err != nil {
		return nil, err
	}
	cr := body.Credential
	if cr.Access == "" || cr.Secret == "" {
		return nil, malformed(OpSecurityKey, resp, errors.New("answer has no credential.access or credential.secret"))
	}
	expires, lifetime, err := expiry("credential.expires_at", cr.ExpiresAt, "", start)
	if err != nil {
		return nil, malformed(OpSecurityKey, resp, err)
	}
	margin := max(lifetime/2, metadataRefreshMargin)
	if margin >= lifetime {
		margin = lifetime / 2
	}
	return &temporaryKeys{
		keys:      accessKeys{accessKey: cr.Access, secretKey: cr.Secret, securityToken: cr.SecurityToken, metadata: p.endpoint},
		expiresAt: expires,
		refreshAt: expires.Add(-margin),
	}, nil
}

// sessionToken asks for a session token; "" on 404, 405 or 503, from a service without them.
func (p *metadataProvider) sessionToken(ctx context.Context, c httpCaller) (string, error) {
	var token []byte
	_, err := c.send(ctx, request{
		op: OpMetadataToken, method: http.MethodPut, url: p.endpoint + metadataTokenPath,
		header: map[string]string{"X-Metadata-Token-Ttl-Seconds": metadataTokenTTL},
		ok:     []int{http.StatusOK}, secrets: func() []string { return nil },
	}, &token)
	if e := AsAPIError(err); e != nil {
		switch e.StatusCode {
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusServiceUnavailable:
			return "", nil
		}
	}
	return string(token), err
}
