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
func (s *Server) adminRoutes(rt *router) {
	rt.handleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "Healthy\n")
	})
	rt.handleFunc("GET /-/sim/images", s.adminListImages)
	rt.handleFunc("GET /-/sim/images/{id}", s.adminGetImage)
	rt.handleFunc("PUT /-/sim/images/{id}", s.adminPutImage)
	rt.handleFunc("PUT /-/sim/images/{id}/status", s.adminPutStatus)
	rt.handleFunc("DELETE /-/sim/images/{id}", s.adminDeleteImage)
	rt.handleFunc("GET /-/sim/faults", s.adminListFaults)
	rt.handleFunc("POST /-/sim/faults", s.adminAddFault)
	rt.handleFunc("DELETE /-/sim/faults", s.adminClearFaults)
	rt.handleFunc("DELETE /-/sim/faults/{id}", s.adminRemoveFault)
	rt.handleFunc("POST /-/sim/tokens/expire", s.adminExpireTokens)
	rt.handleFunc("GET /-/sim/stats", s.adminStats)
	rt.handleFunc("DELETE /-/sim/stats", s.adminResetStats)
	rt.handleFunc("GET /-/sim/settings", s.adminSettings)
	rt.handleFunc("PUT /-/sim/settings", s.adminPutSettings)
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

// settings are the readings switchable at run time; in a PUT, absent fields
// keep their value.
type settings struct {
	UntypedListing       *string `json:"untyped_listing,omitempty"`
	RefuseWith403        *bool   `json:"refuse_with_403,omitempty"`
	MetadataSessionToken *string `json:"metadata_session_token,omitempty"`
}

func (s *Server) adminSettings(w http.ResponseWriter, _ *http.Request) {
	mode, refuse, session := s.untypedListing(), s.refuse403.Load(), s.MetadataSessionToken()
	writeJSON(w, http.StatusOK, settings{UntypedListing: &mode, RefuseWith403: &refuse, MetadataSessionToken: &session})
}

func (s *Server) adminPutSettings(w http.ResponseWriter, r *http.Request) {
	var change settings
	if err := decodeStrict(r, &change); err != nil {
		adminError(w, http.StatusBadRequest, "decode settings: %v", err)
		return
	}
	if change.UntypedListing != nil {
		if err := checkUntypedListing(*change.UntypedListing); err != nil {
			adminError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	if change.MetadataSessionToken != nil {
		if err := checkSessionTokenMode(*change.MetadataSessionToken); err != nil {
			adminError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	// Both are valid now: a refused PUT changes nothing.
	if change.UntypedListing != nil {
		_ = s.SetUntypedListing(*change.UntypedListing) // checked above
	}
	if change.MetadataSessionToken != nil {
		_ = s.SetMetadataSessionToken(*change.MetadataSessionToken) // checked above
	}
	if change.RefuseWith403 != nil {
		s.SetRefuseWith403(*change.RefuseWith403)
	}
	s.adminSettings(w, r)
}
