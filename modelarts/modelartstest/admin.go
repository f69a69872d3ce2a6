// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// maxAdminBody caps what the admin API reads of a request body.
const maxAdminBody = 1 << 20

// adminRoutes registers the unauthenticated admin API (see the package doc).
func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "Healthy\n")
	})
	mux.HandleFunc("GET /-/sim/images", s.adminListImages)
	mux.HandleFunc("GET /-/sim/images/{id}", s.adminGetImage)
	mux.HandleFunc("PUT /-/sim/images/{id}", s.adminPutImage)
	mux.HandleFunc("PUT /-/sim/images/{id}/status", s.adminPutStatus)
	mux.HandleFunc("DELETE /-/sim/images/{id}", s.adminDeleteImage)
	mux.HandleFunc("GET /-/sim/faults", s.adminListFaults)
	mux.HandleFunc("POST /-/sim/faults", s.adminAddFault)
	mux.HandleFunc("DELETE /-/sim/faults", s.adminClearFaults)
	mux.HandleFunc("DELETE /-/sim/faults/{id}", s.adminRemoveFault)
	mux.HandleFunc("POST /-/sim/tokens/expire", s.adminExpireTokens)
	mux.HandleFunc("GET /-/sim/stats", s.adminStats)
	mux.HandleFunc("DELETE /-/sim/stats", s.adminResetStats)
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
	images := s.images.snapshot()
	out := make([]wireImage, len(images))
	for i, img := range images {
		out[i] = toWire(img)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminGetImage(w http.ResponseWriter, r *http.Request) {
	img, ok := s.images.get(r.PathValue("id"))
	if !ok {
		adminError(w, http.StatusNotFound, "no image %q", r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, toWire(img))
}

// adminPutImage stores the image in the body under the id in the path.
func (s *Server) adminPutImage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var img modelarts.Image
	if err := decodeStrict(r, &img); err != nil {
		adminError(w, http.StatusBadRequest, "decode image: %v", err)
		return
	}
	if img.ID != "" && img.ID != id {
		adminError(w, http.StatusBadRequest, "image id %q in the body differs from %q in the path", img.ID, id)
		return
	}
	img.ID = id
	s.SetImage(img)
	writeJSON(w, http.StatusOK, toWire(img))
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

func (s *Server) adminDeleteImage(w http.ResponseWriter, r *http.Request) {
	if !s.DeleteImage(r.PathValue("id")) {
		adminError(w, http.StatusNotFound, "no image %q", r.PathValue("id"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminListFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.faults.snapshot())
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
	writeJSON(w, http.StatusCreated, map[string]int{"id": s.faults.add(f)})
}

func (s *Server) adminClearFaults(w http.ResponseWriter, _ *http.Request) {
	s.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminRemoveFault(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || !s.faults.remove(id) {
		adminError(w, http.StatusNotFound, "no fault %q", r.PathValue("id"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminExpireTokens(w http.ResponseWriter, _ *http.Request) {
	s.ExpireTokens()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) adminResetStats(w http.ResponseWriter, _ *http.Request) {
	s.ResetCounters()
	w.WriteHeader(http.StatusNoContent)
}
