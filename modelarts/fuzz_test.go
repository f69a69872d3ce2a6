// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// fuzzMaxBody is a small body cap, so that the fuzzer reaches it.
const fuzzMaxBody = 4 << 10

func fuzzResponse(status int, body []byte) *http.Response {
	h := http.Header{}
	h.Set("X-Request-Id", "0123456789abcdef0123456789abcdef")
	req, _ := http.NewRequest(http.MethodGet, "https://modelarts.example.com/v1/p/images", nil)
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: req}
}

// checkDecode holds for any body decoded into out: an error is a
// malformed-response *APIError; a success means valid JSON within the cap,
// and the decoded value survives a JSON round trip unchanged. The elements
// of an ImageList that did not decode or lack id or status (not part of the
// round trip) are described like a malformed answer; the others have a
// lowercase id and a status. It returns the decoded value, nil on error.
func checkDecode[T any](t *testing.T, body []byte) *T {
	var out T
	err := decodeResponse(context.Background(), OpShowImage, fuzzResponse(http.StatusOK, body), fuzzMaxBody, &out)
	if err != nil {
		apiErr := AsAPIError(err)
		if apiErr == nil || !errors.Is(err, ErrMalformedResponse) {
			t.Fatalf("error %v is not a malformed-response APIError", err)
		}
		if apiErr.RequestID == "" {
			t.Fatalf("error %v lost the request id", err)
		}
		if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\n\r") {
			t.Fatalf("error message %q is empty or spans lines", msg)
		}
		return nil
	}
	if len(body) > fuzzMaxBody {
		t.Fatalf("a body of %d bytes passed the cap of %d", len(body), fuzzMaxBody)
	}
	if !json.Valid(body) {
		t.Fatalf("invalid JSON %q was accepted", body)
	}
	if list, ok := any(&out).(*ImageList); ok {
		for _, bad := range list.Invalid {
			if !errors.Is(bad.Err, ErrMalformedResponse) || bad.Err.RequestID == "" || strings.ContainsAny(bad.Err.Error(), "\n\r") {
				t.Fatalf("element not decoded: %v is not a one-line malformed-response error with the request id", bad.Err)
			}
		}
		list.Invalid = nil
		for _, img := range list.Data {
			if img.ID == "" || img.ID != strings.ToLower(img.ID) || img.Status == "" {
				t.Fatalf("element %+v kept without a lowercase id and a status", img)
			}
		}
	}
	again, err := json.Marshal(out)
	if err != nil {
		t.Fatalf("marshal %+v: %v", out, err)
	}
	var back T
	if err := json.Unmarshal(again, &back); err != nil || !reflect.DeepEqual(out, back) {
		t.Fatalf("round trip changed the value: %+v -> %s -> %+v (%v)", out, again, back, err)
	}
	return &out
}

var imageSeeds = []string{
	`{"arch":"x86_64","create_at":1638234504492,"description":"","dev_services":["NOTEBOOK","SSH"],"id":"278e88d1-5b71-4766-8502-b3ba72e824d9","name":"pytorch1.8-cuda10.2-cudnn7-ubuntu18.04","namespace":"atelier","origin":"CUSTOMIZE","resource_categories":["GPU","CPU"],"service_type":"COMMON","size":3376133259,"status":"ACTIVE","status_message":"","support_res_categories":["GPU","CPU"],"swr_path":"swr.xxx.com/atelier/pytorch_1_8:pytorch_1.8.0-cuda_10.2-py_3.7-ubuntu_18.04-x86_64-20220926104358-041ba2e","tag":"pytorch_1.8.0-cuda_10.2-py_3.7-ubuntu_18.04-x86_64-20220926104358-041ba2e","type":"BUILD_IN","update_at":1638234504492,"visibility":"PUBLIC","workspace_id":"0"}`,
	`{"id":"x","size":"123"}`,
	`{"id":"x","size":null,"status":"FROZEN","flavor_type":"modelarts.vm.cpu.2u","tags":[{"key":"k","value":"v"}],"x":{"y":[1,2,3]}}`,
	`{"id":"x","size":1e3}`,
	`{"id":"x","size":-1,"create_at":9223372036854775807}`,
	`{"id":"\u955c\u50cf","name":"\ud800"}`,
	`{"id":"x"`,
	`[]`,
	`null`,
	``,
	`{"id":"x"}{"id":"y"}`,
}

// FuzzDecodeImage feeds ShowImage answers to the client's decoder and to
// the check of the answer against the id asked: an answer is believed only
// when it has the id asked (in any case), returned in lower case, and a status.
//
//	go test -run '^$' -fuzz '^FuzzDecodeImage$' -fuzztime 30s -fuzzminimizetime 2s ./modelarts/
func FuzzDecodeImage(f *testing.F) {
	for _, s := range imageSeeds {
		f.Add([]byte(s), "x")
	}
	f.Add([]byte(`{"id":"X","status":"ACTIVE"}`), "x")
	f.Add([]byte(`{"id":"\u0130","status":"ACTIVE"}`), "i")
	f.Fuzz(func(t *testing.T, body []byte, asked string) {
		img := checkDecode[Image](t, body)
		if img == nil {
			return
		}
		id, status := img.ID, img.Status
		err := checkShown(img, asked, fuzzResponse(http.StatusOK, nil), nil)
		believed := id != "" && status != "" && strings.EqualFold(strings.ToLower(id), asked)
		switch {
		case err == nil && !believed:
			t.Fatalf("answer with id %q and status %q believed for %q", id, status, asked)
		case err != nil && believed:
			t.Fatalf("answer with id %q and status %q refused for %q: %v", id, status, asked, err)
		case err != nil && (!errors.Is(err, ErrMalformedResponse) || AsAPIError(err).RequestID == "" || strings.ContainsAny(err.Error(), "\n\r")):
			t.Fatalf("error %v is not a one-line malformed-response error with the request id", err)
		case err == nil && img.ID != strings.ToLower(id):
			t.Fatalf("id %q returned as %q, want it in lower case", id, img.ID)
		}
	})
}

// FuzzDecodeImageList feeds ListImage answers to the client's decoder.
func FuzzDecodeImageList(f *testing.F) {
	for _, s := range []string{
		`{"current":0,"data":[` + imageSeeds[0] + `],"pages":1,"size":1,"total":1}`,
		`{"current":"0","data":[],"pages":0,"size":0,"total":0}`,
		`{"data":null,"total":-5}`,
		`{"data":[{"id":"a","size":"1"}],"total":1}`,
		`{"data":[1,2,3]}`,
		`{"total":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkDecode[ImageList](t, body) })
}

// FuzzStatusError feeds error answers (JSON of ModelArts, the gateway or
// IAM, HTML pages, anything) to the error mapping: the class follows the
// status, and what ends in logs is short, one line, valid UTF-8 and free of
// control characters and of HTML markup.
func FuzzStatusError(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{400, `{"error_code":"ModelArts.6404","error_msg":"Image not found"}`},
		{429, `{"error_code":"APIG.0308","error_msg":"The throttling threshold has been reached","request_id":"abc"}`},
		{401, `{"error":{"code":401,"message":"The request you have made requires authentication.","title":"Unauthorized"}}`},
		{502, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body></body></html>"},
		{503, "<TITLE>a<b>c</b></TITLE>"},
		{500, "plain\x00text\x1b[31m"},
		{404, `{"error_msg":"` + strings.Repeat("\u00e9", 300) + `"}`},
		{404, `{"error_code":"APIG.0101","error_msg":"The API does not exist"}`},
		{403, `{"error_code":"ModelArts.0203","error_msg":"Invalid token."}`},
		{400, `{"error_code":"ModelArts.6400","error_msg":"fromIndex(200) > toIndex(33)"}`},
	} {
		f.Add(s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		resp := fuzzResponse(status, body)
		resp.Header.Del("X-Request-Id")
		e := statusError(OpShowImage, resp, fuzzMaxBody, nil)
		if !errors.Is(e, classify(status, e.ErrorCode)) {
			t.Fatalf("class %v for status %d", e.Class, status)
		}
		for name, s := range map[string]string{"message": e.Message, "error code": e.ErrorCode, "request id": e.RequestID} {
			if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
				t.Fatalf("%s %q: invalid UTF-8 or control characters", name, s)
			}
		}
		if n := utf8.RuneCountInString(e.Message); n > maxMessageLen {
			t.Fatalf("message of %d characters", n)
		}
		if n := utf8.RuneCountInString(e.RequestID); n > maxRequestIDLen {
			t.Fatalf("request id of %d characters", n)
		}
		if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '<' && strings.ContainsAny(e.Message, "<>") {
			t.Fatalf("markup in the message %q of an HTML page", e.Message)
		}
		if strings.ContainsAny(e.Error(), "\n\r") {
			t.Fatalf("error %q spans lines", e.Error())
		}
	})
}

// FuzzCanonicalQuery checks the canonical query: only unreserved characters,
// %XX escapes, "=" and "&"; one k=v pair per value, sorted by key, then by
// value; decoding it gives back exactly the query.
func FuzzCanonicalQuery(f *testing.F) {
	for _, s := range []string{"", "limit=2&marker=13551d6b-755d-4757-b956-536f674975c0", "a=1&a=0&b", "name=a b&x=%2F", "k=&=v", "\u955c=\u50cf", "a=%zz", "sort_key=updateTime&sort_dir=DESC"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		query, err := url.ParseQuery(raw)
		if err != nil {
			return // the client builds its queries with url.Values.Encode: never malformed
		}
		got := canonicalQuery(query)
		for i := 0; i < len(got); i++ {
			c := got[i]
			switch {
			case c == '=' || c == '&' || isUnreserved(c):
			case c == '%' && i+2 < len(got) && isUpperHex(got[i+1]) && isUpperHex(got[i+2]):
				i += 2
			default:
				t.Fatalf("canonicalQuery(%q) = %q: byte %q at %d", raw, got, c, i)
			}
		}
		type pair struct{ k, v string }
		var want []pair
		for k, vs := range query {
			for _, v := range vs {
				want = append(want, pair{k, v})
			}
		}
		slices.SortFunc(want, func(a, b pair) int {
			if c := strings.Compare(a.k, b.k); c != 0 {
				return c
			}
			return strings.Compare(a.v, b.v)
		})
		var have []pair
		if got != "" {
			for _, kv := range strings.Split(got, "&") {
				k, v, ok := strings.Cut(kv, "=")
				dk, err1 := url.PathUnescape(k)
				dv, err2 := url.PathUnescape(v)
				if !ok || err1 != nil || err2 != nil {
					t.Fatalf("canonicalQuery(%q) = %q: bad pair %q", raw, got, kv)
				}
				have = append(have, pair{dk, dv})
			}
		}
		if !slices.Equal(want, have) {
			t.Fatalf("canonicalQuery(%q) = %q: pairs %v, want %v", raw, got, have, want)
		}
	})
}

// FuzzCanonicalHeaders checks that a signed header becomes exactly one line
// "lowercase-name:trimmed,values\n", whatever the case of the names.
func FuzzCanonicalHeaders(f *testing.F) {
	f.Add("Content-Type", "application/json", "")
	f.Add("X-Sdk-Date", " 20191115T033655Z ", "")
	f.Add("x-project-id", "a", " b ")
	f.Add("X-Security-Token", "\t", "")
	f.Fuzz(func(t *testing.T, name, v1, v2 string) {
		if name == "" || strings.EqualFold(name, "host") || strings.ContainsFunc(name, func(r rune) bool {
			return r > unicode.MaxASCII || r <= ' ' || strings.ContainsRune(":()<>@,;\\\"/[]?={}\x7f", r)
		}) {
			return // not a header name net/http would send
		}
		values := []string{v1}
		if v2 != "" {
			values = append(values, v2)
		}
		for _, v := range values {
			if strings.ContainsAny(v, "\r\n\x00") {
				return // not a header value net/http would send
			}
		}
		req, _ := http.NewRequest(http.MethodGet, "https://example.com/", nil)
		for _, v := range values {
			req.Header.Add(name, v)
		}
		trimmed := make([]string, len(values))
		for i, v := range values {
			trimmed[i] = strings.TrimSpace(v)
		}
		want := strings.ToLower(name) + ":" + strings.Join(trimmed, ",") + "\n"
		for _, signed := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			if got := canonicalHeaders(req, []string{signed}); got != want {
				t.Fatalf("canonicalHeaders(%q=%q, [%q]) = %q, want %q", name, values, signed, got, want)
			}
		}
	})
}
