// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

// A server with the sample images, a token for the demo user, and ShowImage
// with it; then an injected throttling fault.
func ExampleNewServer() {
	srv := modelartstest.NewServer(modelartstest.Options{Images: modelartstest.SampleImages()})
	defer srv.Close()

	body := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"` + modelartstest.DemoUser +
		`","password":"` + modelartstest.DemoPassword + `","domain":{"name":"` + modelartstest.DemoDomain +
		`"}}}},"scope":{"project":{"name":"eu-de"}}}}`
	resp, err := http.Post(srv.URL+"/v3/auth/tokens", "application/json", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	_ = resp.Body.Close()
	token := resp.Header.Get("X-Subject-Token")

	show := func() *http.Response {
		req, _ := http.NewRequest(http.MethodGet,
			srv.URL+"/v1/"+srv.ProjectID()+"/images/"+modelartstest.SampleIDFrozen, nil)
		req.Header.Set("X-Auth-Token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		return resp
	}
	resp = show()
	var img modelarts.Image
	_ = json.NewDecoder(resp.Body).Decode(&img)
	_ = resp.Body.Close()
	fmt.Println(resp.StatusCode, img.Name, img.Status)

	srv.AddFault(modelartstest.Fault{Kind: modelartstest.FaultStatus, Status: http.StatusTooManyRequests, Count: 1})
	resp = show()
	_ = resp.Body.Close()
	fmt.Println(resp.StatusCode, srv.Requests(modelartstest.OpShowImage))
	// Output:
	// 200 tinyml-toolkit FROZEN
	// 429 2
}
