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
// the server), the way huaweicloud-sdk-go-v3 gets them
// (core/auth/internal/metadata_accessor.go): an optional session token, then
// the keys; refreshed as core/auth/provider/metadata_provider.go does, but
// never per request.
const (
	metadataTokenPath = "/meta-data/latest/api/token"
	securityKeyPath   = "/openstack/latest/securitykey"
	metadataTokenTTL  = "21600" // seconds: the SDK's six hours
	// metadataRefreshMargin: the SDK refreshes temporary keys when less than
	// this remains.
	metadataRefreshMargin = 40 * time.Minute
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

// metadataProvider caches the temporary keys of one metadata endpoint for
// every client of the process (see renewing): while the service fails, the
// current keys are used until they expire.
type metadataProvider struct {
	endpoint  string
	transport http.RoundTripper // direct: 169.254.169.254 must not go through a proxy
	keys      renewing[*temporaryKeys]
}

func newMetadataProvider(endpoint string, now func() time.Time) *metadataProvider {
	transport := http.DefaultTransport
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t = t.Clone()
		t.Proxy = nil
		transport = t
	}
	return &metadataProvider{endpoint: endpoint, transport: transport, keys: newRenewing[*temporaryKeys](OpSecurityKey, now)}
}

// metadataProvider returns the provider of endpoint.
func (s *Shared) metadataProvider(endpoint string, now func() time.Time) *metadataProvider {
	return sharedEntry(s, &s.metadata, endpoint, nil, func() *metadataProvider { return newMetadataProvider(endpoint, now) })
}

// fetch asks the metadata service for keys, through c.
func (p *metadataProvider) fetch(ctx context.Context, c httpCaller) (*temporaryKeys, error) {
	start := p.keys.now()
	keys, err := p.fetchKeys(ctx, c, start)
	if e := AsAPIError(err); e != nil { // every error of send is one
		cause := errors.New("the ECS metadata service could not give credentials")
		if e.Cause != nil {
			cause = fmt.Errorf("%w: %w", cause, e.Cause)
		}
		e.Cause = cause
	}
	return keys, err
}

// fetchKeys gets the keys for a request sent at start. They are refreshed at
// the earlier of metadataRefreshMargin before they expire and half their
// lifetime, or at half their lifetime when they live less than the margin
// (they would otherwise be refreshed on every call).
func (p *metadataProvider) fetchKeys(ctx context.Context, c httpCaller, start time.Time) (*temporaryKeys, error) {
	session, err := p.sessionToken(ctx, c)
	if err != nil {
		return nil, err
	}
	r := request{
		op: OpSecurityKey, method: http.MethodGet, url: p.endpoint + securityKeyPath, userAgent: c.userAgent,
		ok: []int{http.StatusOK}, maxBody: c.maxBody, secrets: func() []string { return []string{session} },
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
	resp, err := send(ctx, c.client, r, &body)
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

// sessionToken asks for a session token; "" when the service gives none
// (404, 405 or 503: the service predates session tokens or does not want one).
func (p *metadataProvider) sessionToken(ctx context.Context, c httpCaller) (string, error) {
	var token []byte
	_, err := send(ctx, c.client, request{
		op: OpMetadataToken, method: http.MethodPut, url: p.endpoint + metadataTokenPath, userAgent: c.userAgent,
		header: map[string]string{"X-Metadata-Token-Ttl-Seconds": metadataTokenTTL},
		ok:     []int{http.StatusOK}, maxBody: c.maxBody, secrets: func() []string { return nil },
	}, &token)
	if e := AsAPIError(err); e != nil {
		switch e.StatusCode {
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusServiceUnavailable:
			return "", nil
		}
	}
	return string(token), err
}

// metadataKeys are the keys of a client that signs with temporary keys: the
// provider shared by the process, asked through the client's own caller.
type metadataKeys struct {
	provider *metadataProvider
	caller   httpCaller
}

func (m *metadataKeys) keys(ctx context.Context) (accessKeys, error) {
	k, err := m.provider.keys.get(ctx, func(ctx context.Context) (*temporaryKeys, error) {
		return m.provider.fetch(ctx, m.caller)
	})
	if err != nil {
		return accessKeys{}, err
	}
	return k.keys, nil
}

func (m *metadataKeys) secrets() []string {
	if k := m.provider.keys.current(); k != nil {
		return []string{k.keys.secretKey, k.keys.securityToken}
	}
	return nil
}

// refused drops k, when they are still the current keys, so that the next
// call asks the service for new ones: the keys were revoked early.
func (m *metadataKeys) refused(k accessKeys) {
	if cur := m.provider.keys.current(); cur != nil && cur.keys == k {
		m.provider.keys.invalidate(cur)
	}
}
