// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// maxAdminBody caps what the admin API reads of a request body.
const maxAdminBody = 1 << 20

// adminRoutes registers the unauthenticated admin API (see the package doc):
// only what make demo, the documentation and the end-to-end and load tests
// use; tests in the same process use the Server's methods.
func (s *Server) adminRoutes(rt *router) {
	rt.handleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "Healthy\n")
	})
	rt.handleFunc("GET /-/sim/images", s.adminListImages)
	rt.handleFunc("PUT /-/sim/images/{id}/status", s.adminPutStatus)
	rt.handleFunc("POST /-/sim/faults", s.adminAddFault)
	rt.handleFunc("DELETE /-/sim/faults", func(w http.ResponseWriter, _ *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	rt.handleFunc("POST /-/sim/tokens/expire", func(w http.ResponseWriter, _ *http.Request) {
		s.ExpireTokens()
		w.WriteHeader(http.StatusNoContent)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeReply(w, jsonReply(status, v))
}

func adminError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// decodeStrict reads one JSON value and refuses unknown fields, to catch typos
// in test scripts.
func decodeStrict(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func (s *Server) adminListImages(w http.ResponseWriter, _ *http.Request) {
	images := s.Images()
	out := make([]wireImage, len(images))
	for i, img := range images {
		out[i] = toWire(img)
	}
	writeJSON(w, http.StatusOK, out)
}

type statusChange struct {
	Status        string  `json:"status"`
	StatusMessage *string `json:"status_message,omitempty"`
}

func (s *Server) adminPutStatus(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var change statusChange
	if err := decodeStrict(r, &change); err != nil || change.Status == "" {
		adminError(w, http.StatusBadRequest, `want {"status":"..."}`)
		return
	}
	if !s.setStatus(id, change.Status, change.StatusMessage) {
		adminError(w, http.StatusNotFound, "no image %q", id)
		return
	}
	img, _ := s.images.get(id)
	writeJSON(w, http.StatusOK, toWire(img))
}

func (s *Server) adminAddFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := decodeStrict(r, &f); err != nil {
		adminError(w, http.StatusBadRequest, "decode fault: %v", err)
		return
	}
	if err := f.Validate(); err != nil {
		adminError(w, http.StatusBadRequest, "%v", err)
		return
	}
	s.faults.add(f)
	w.WriteHeader(http.StatusCreated)
}
