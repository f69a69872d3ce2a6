// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"net/http"
	"slices"
	"strings"
)

func (s *Server) routes() http.Handler {
	rt := &router{mux: http.NewServeMux(), methods: map[string][]string{}}
	rt.handle("GET /v1/{project_id}/images/{id}", s.operation(OpShowImage, s.showImage))
	rt.handle("GET /v1/{project_id}/images", s.operation(OpListImage, s.listImages))
	rt.handle("POST /v3/auth/tokens", s.operation(OpCreateToken, s.createToken))
	rt.handle("GET /v3/projects", s.operation(OpListProjects, s.listProjects))
	rt.handle("PUT "+MetadataTokenPath, s.operation(OpMetadataToken, s.metadataToken))
	rt.handle("GET "+SecurityKeyPath, s.operation(OpSecurityKey, s.securityKey))
	s.adminRoutes(rt)
	rt.finish()
	// A path no API has (wrong base path, version or region) is answered by
	// the API gateway, before any authentication (opentelekomcloud-docs/modelarts
	// umn/source/troubleshooting/inference_deployment/service_prediction/error_apig.xxxx_occurred_in_a_prediction_failure.rst).
	rt.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeReply(w, gatewayError(http.StatusNotFound, CodeAPINotFound, MsgAPINotFound, w.Header().Get("X-Request-Id")))
	})
	rt.mux.HandleFunc("/-/", func(w http.ResponseWriter, r *http.Request) {
		adminError(w, http.StatusNotFound, "no admin route %s %s", r.Method, r.URL.Path)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", s.newRequestID())
		rt.mux.ServeHTTP(w, r)
	})
}

// router is a ServeMux that remembers the methods of each path, so that a
// known path asked with another method gets 405 while an unknown path falls
// through to the catch-all routes.
type router struct {
	mux     *http.ServeMux
	methods map[string][]string // path pattern → methods
}

// handle registers "METHOD /path".
func (rt *router) handle(pattern string, h http.Handler) {
	method, path, _ := strings.Cut(pattern, " ")
	rt.mux.Handle(pattern, h)
	rt.methods[path] = append(rt.methods[path], method)
	if method == http.MethodGet {
		rt.methods[path] = append(rt.methods[path], http.MethodHead) // GET patterns serve HEAD too
	}
}

func (rt *router) handleFunc(pattern string, h http.HandlerFunc) { rt.handle(pattern, h) }

// finish answers the other methods of every known path with 405, as the API
// gateway does (opentelekomcloud-docs/modelarts
// umn/source/troubleshooting/inference_deployment/service_prediction/method_not_allowed.rst).
func (rt *router) finish() {
	for path, methods := range rt.methods {
		slices.Sort(methods)
		allow := strings.Join(methods, ", ")
		rt.mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", allow)
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		})
	}
}
