// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// imageStore holds the images by id and, built lazily, a sorted snapshot for
// ListImage that is never changed once built.
type imageStore struct {
	mu     sync.RWMutex
	byID   map[string]modelarts.Image
	sorted []modelarts.Image // nil when stale
}

func newImageStore(images []modelarts.Image) *imageStore {
	st := &imageStore{byID: make(map[string]modelarts.Image, len(images))}
	for _, img := range images {
		st.byID[img.ID] = cloneImage(img)
	}
	return st
}

// cloneImage copies the slices and the size so that the caller's image and
// the stored one share nothing.
func cloneImage(img modelarts.Image) modelarts.Image {
	img.DevServices = slices.Clone(img.DevServices)
	img.ResourceCategories = slices.Clone(img.ResourceCategories)
	img.SupportResCategories = slices.Clone(img.SupportResCategories)
	if img.Size != nil {
		size := *img.Size
		img.Size = &size
	}
	return img
}

func (st *imageStore) get(id string) (modelarts.Image, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	img, ok := st.byID[id]
	return img, ok
}

func (st *imageStore) set(img modelarts.Image) {
	img = cloneImage(img)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.byID[img.ID] = img
	st.sorted = nil
}

// update applies fn to a stored image; it reports whether the image exists.
func (st *imageStore) update(id string, fn func(*modelarts.Image)) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	img, ok := st.byID[id]
	if !ok {
		return false
	}
	fn(&img)
	st.byID[id] = img
	st.sorted = nil
	return true
}

func (st *imageStore) delete(id string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	_, ok := st.byID[id]
	delete(st.byID, id)
	st.sorted = nil
	return ok
}

func (st *imageStore) len() int {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return len(st.byID)
}

// snapshot returns all images ordered by create_at, then id. The caller must
// not modify it.
func (st *imageStore) snapshot() []modelarts.Image {
	st.mu.RLock()
	sorted := st.sorted
	st.mu.RUnlock()
	if sorted != nil {
		return sorted
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.sorted == nil {
		st.sorted = make([]modelarts.Image, 0, len(st.byID))
		for _, img := range st.byID {
			st.sorted = append(st.sorted, img)
		}
		slices.SortFunc(st.sorted, compareImages)
	}
	return st.sorted
}

func compareImages(a, b modelarts.Image) int {
	return cmp.Or(cmp.Compare(a.CreateAt, b.CreateAt), cmp.Compare(a.ID, b.ID))
}

// SetImage adds an image or replaces the one with the same id.
func (s *Server) SetImage(img modelarts.Image) { s.images.set(img) }

// SetStatus changes an image's status (and its update_at to the server's
// clock); it reports whether the image exists.
func (s *Server) SetStatus(id, status string) bool {
	return s.setStatus(id, status, nil)
}

func (s *Server) setStatus(id, status string, message *string) bool {
	now := s.now().UnixMilli()
	return s.images.update(id, func(img *modelarts.Image) {
		img.Status = status
		if message != nil {
			img.StatusMessage = *message
		}
		img.UpdateAt = now
	})
}

// DeleteImage removes an image: ShowImage answers "not found" for it
// afterwards. It reports whether the image existed.
func (s *Server) DeleteImage(id string) bool { return s.images.delete(id) }

// Image returns a copy of one image.
func (s *Server) Image(id string) (modelarts.Image, bool) {
	img, ok := s.images.get(id)
	return cloneImage(img), ok
}

// Images returns a copy of all images in ListImage order.
func (s *Server) Images() []modelarts.Image {
	snap := s.images.snapshot()
	out := make([]modelarts.Image, len(snap))
	for i, img := range snap {
		out[i] = cloneImage(img)
	}
	return out
}

// showImage is GET /v1/{project_id}/images/{id}.
func (s *Server) showImage(c *call) reply {
	id := c.r.PathValue("id")
	img, ok := s.images.get(id)
	if !ok {
		status := http.StatusBadRequest
		if s.opts.NotFoundAs404 {
			status = http.StatusNotFound
		}
		rp := modelArtsError(status, CodeImageNotFound, "Image "+id+" not found")
		rp.imageIDs = []string{id}
		return rp
	}
	rp := jsonReply(http.StatusOK, toWire(img))
	rp.imageIDs = []string{id}
	return rp
}

// listQuery is a parsed ListImage query.
type listQuery struct {
	limit, offset int
	name          string
	fuzzy         bool
	namespace     string
	serviceType   string
	imageType     string
	workspaceID   string
	descending    bool
}

type wireImageList struct {
	Current int         `json:"current"`
	Data    []wireImage `json:"data"`
	Pages   int         `json:"pages"`
	Size    int         `json:"size"`
	Total   int64       `json:"total"`
}

// listImages is GET /v1/{project_id}/images.
func (s *Server) listImages(c *call) reply {
	q, msg := s.parseListQuery(c.r)
	if msg != "" {
		return modelArtsError(http.StatusBadRequest, CodeParameterError, "Parameter error. "+msg)
	}
	snap := s.images.snapshot()
	page := wireImageList{Data: []wireImage{}}
	var ids []string
	var total int
	for i := range snap {
		img := &snap[i]
		if q.descending {
			img = &snap[len(snap)-1-i]
		}
		if !q.matches(img) {
			continue
		}
		if total >= q.offset && total-q.offset < q.limit {
			page.Data = append(page.Data, toWire(*img))
			ids = append(ids, img.ID)
		}
		total++
	}
	page.Total = int64(total)
	page.Size = len(page.Data)
	page.Pages = (total + q.limit - 1) / q.limit
	page.Current = q.offset / q.limit
	if s.opts.CurrentFromOne {
		page.Current++
	}
	rp := jsonReply(http.StatusOK, page)
	rp.imageIDs = ids
	return rp
}

// parseListQuery returns the query or, for a bad one, why.
func (s *Server) parseListQuery(r *http.Request) (listQuery, string) {
	v := r.URL.Query()
	q := listQuery{
		limit:       DefaultPageSize,
		fuzzy:       true,
		name:        v.Get("name"),
		namespace:   v.Get("namespace"),
		serviceType: v.Get("service_type"),
		imageType:   v.Get("type"),
		workspaceID: cmp.Or(v.Get("workspace_id"), "0"),
	}
	var err error
	if v.Has("limit") {
		if q.limit, err = strconv.Atoi(v.Get("limit")); err != nil || q.limit < 1 {
			return q, "limit must be a positive integer"
		}
	}
	q.limit = min(q.limit, s.opts.MaxPageSize)
	if v.Has("offset") {
		if q.offset, err = strconv.Atoi(v.Get("offset")); err != nil || q.offset < 0 {
			return q, "offset must be a non-negative integer"
		}
	}
	if v.Has("name_fuzzy_match") {
		if q.fuzzy, err = strconv.ParseBool(v.Get("name_fuzzy_match")); err != nil {
			return q, "name_fuzzy_match must be true or false"
		}
	}
	switch strings.ToUpper(v.Get("sort_dir")) {
	case "", "ASC":
	case "DESC":
		q.descending = true
	default:
		return q, "sort_dir must be ASC or DESC"
	}
	return q, ""
}

func (q *listQuery) matches(img *modelarts.Image) bool {
	switch {
	case q.name != "" && q.fuzzy && !strings.Contains(img.Name, q.name),
		q.name != "" && !q.fuzzy && img.Name != q.name,
		q.namespace != "" && img.Namespace != q.namespace,
		q.serviceType != "" && img.ServiceType != q.serviceType,
		q.imageType != "" && img.Type != q.imageType:
		return false
	}
	return cmp.Or(img.WorkspaceID, "0") == q.workspaceID
}

// wireImage is an image as the API sends it: empty fields left out, size
// absent (not null) when unknown.
type wireImage struct {
	Arch                 string   `json:"arch,omitempty"`
	CreateAt             int64    `json:"create_at,omitempty"`
	Description          string   `json:"description,omitempty"`
	DevServices          []string `json:"dev_services,omitempty"`
	ID                   string   `json:"id"`
	Name                 string   `json:"name,omitempty"`
	Namespace            string   `json:"namespace,omitempty"`
	Origin               string   `json:"origin,omitempty"`
	ResourceCategories   []string `json:"resource_categories,omitempty"`
	ServiceType          string   `json:"service_type,omitempty"`
	Size                 *int64   `json:"size,omitempty"`
	Status               string   `json:"status,omitempty"`
	StatusMessage        string   `json:"status_message,omitempty"`
	SupportResCategories []string `json:"support_res_categories,omitempty"`
	SWRPath              string   `json:"swr_path,omitempty"`
	Tag                  string   `json:"tag,omitempty"`
	Type                 string   `json:"type,omitempty"`
	UpdateAt             int64    `json:"update_at,omitempty"`
	Visibility           string   `json:"visibility,omitempty"`
	WorkspaceID          string   `json:"workspace_id,omitempty"`
}

func toWire(img modelarts.Image) wireImage {
	return wireImage{
		Arch:                 img.Arch,
		CreateAt:             img.CreateAt,
		Description:          img.Description,
		DevServices:          img.DevServices,
		ID:                   img.ID,
		Name:                 img.Name,
		Namespace:            img.Namespace,
		Origin:               img.Origin,
		ResourceCategories:   img.ResourceCategories,
		ServiceType:          img.ServiceType,
		Size:                 img.Size,
		Status:               img.Status,
		StatusMessage:        img.StatusMessage,
		SupportResCategories: img.SupportResCategories,
		SWRPath:              img.SWRPath,
		Tag:                  img.Tag,
		Type:                 img.Type,
		UpdateAt:             img.UpdateAt,
		Visibility:           img.Visibility,
		WorkspaceID:          img.WorkspaceID,
	}
}
