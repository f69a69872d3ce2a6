// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// FuzzSignVerify signs requests with arbitrary image ids, query parameters
// and header values, sends them over HTTP and lets the simulator verify the
// signature with its own, independent implementation of the algorithm over
// the request as it arrived: the two canonicalisations must agree on every
// request the client can send.
//
//	go test -run '^$' -fuzz '^FuzzSignVerify$' -fuzztime 30s -fuzzminimizetime 2s ./modelarts/
func FuzzSignVerify(f *testing.F) {
	for _, s := range [][4]string{
		{"278e88d1-5b71-4766-8502-b3ba72e824d9", "limit", "2", "application/json"},
		{"a b/c", "name", "x y+z", "application/json; charset=utf-8"},
		{"%2F..%2F", "marker", "13551d6b-755d-4757-b956-536f674975c0", " padded "},
		{"\u955c\u50cf", "\u540d", "~!*'();:@&=+$,/?#[]", "a\tb"},
		{"", "", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	sim := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	f.Cleanup(sim.Close)
	// Like the exporter's client, never follow a redirect: the simulator's
	// ServeMux redirects unclean paths ("images/.") before authenticating, and
	// a followed redirect carries a signature made for the other path.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	f.Cleanup(client.CloseIdleConnections)
	signer := &modelarts.Signer{AccessKey: modelartstest.DemoAccessKey, SecretKey: modelartstest.DemoSecretKey}

	f.Fuzz(func(t *testing.T, id, key, value, contentType string) {
		u := sim.URL + "/v1/" + sim.ProjectID() + "/images/" + url.PathEscape(id)
		if key != "" || value != "" {
			u += "?" + url.Values{key: {value}}.Encode()
		}
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("X-Project-Id", sim.ProjectID())
		if err := signer.Sign(req); err != nil {
			t.Fatalf("sign %s: %v", u, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return // net/http refused to send it (e.g. a control character in a header)
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode == http.StatusUnauthorized {
			var body struct {
				ErrorCode string `json:"error_code"`
				ErrorMsg  string `json:"error_msg"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			sim.ClearLockouts()
			t.Fatalf("the simulator refused the signature of GET %s (Content-Type %q): %s %s", u, contentType, body.ErrorCode, body.ErrorMsg)
		}
	})
}
