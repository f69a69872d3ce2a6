// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"cmp"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// imageStore holds the images by id and, built lazily per sort key, sorted
// snapshots for ListImage that are never changed once built.
type imageStore struct {
	mu     sync.RWMutex
	byID   map[string]modelarts.Image
	sorted map[string][]modelarts.Image // by sort key; nil when stale
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

// The sort keys ListImage accepts, each an ascending order; ties are broken
// by id so that pages are stable.
var sortKeys = map[string]func(a, b *modelarts.Image) int{
	"update_at": func(a, b *modelarts.Image) int { return cmp.Compare(a.UpdateAt, b.UpdateAt) },
	"create_at": func(a, b *modelarts.Image) int { return cmp.Compare(a.CreateAt, b.CreateAt) },
	"name":      func(a, b *modelarts.Image) int { return cmp.Compare(a.Name, b.Name) },
}

// ListImage's default order is sort_key update_at (the API reference's
// example) in sort_dir DESC (its documented default).
const defaultSortKey = "update_at"

// sortedBy returns all images in ascending order of key, then id. The caller
// must not modify it.
func (st *imageStore) sortedBy(key string) []modelarts.Image {
	st.mu.RLock()
	sorted := st.sorted[key]
	st.mu.RUnlock()
	if sorted != nil {
		return sorted
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.sorted == nil {
		st.sorted = map[string][]modelarts.Image{}
	}
	if st.sorted[key] == nil {
		byKey := sortKeys[key]
		sorted = make([]modelarts.Image, 0, len(st.byID))
		for _, img := range st.byID {
			sorted = append(sorted, img)
		}
		slices.SortFunc(sorted, func(a, b modelarts.Image) int {
			return cmp.Or(byKey(&a, &b), cmp.Compare(a.ID, b.ID))
		})
		st.sorted[key] = sorted
	}
	return st.sorted[key]
}

// inOrder yields the images of an ascending snapshot, last first when desc.
func inOrder(sorted []modelarts.Image, desc bool) iter.Seq[*modelarts.Image] {
	return func(yield func(*modelarts.Image) bool) {
		for i := range sorted {
			j := i
			if desc {
				j = len(sorted) - 1 - i
			}
			if !yield(&sorted[j]) {
				return
			}
		}
	}
}

// SetImage adds an image or replaces the one with the same id.
func (s *Server) SetImage(img modelarts.Image) { s.images.set(img) }

// SetStatus changes an image's status (and its update_at to the server's
// clock, which moves it to the front of the default ListImage order); it
// reports whether the image exists.
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

// Images returns a copy of all images in the default ListImage order
// (update_at DESC, then id DESC), whatever their type.
func (s *Server) Images() []modelarts.Image {
	out := make([]modelarts.Image, 0, s.images.len())
	for img := range inOrder(s.images.sortedBy(defaultSortKey), true) {
		out = append(out, cloneImage(*img))
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
	sortKey       string
	descending    bool
}

type wireImageList struct {
	Current int         `json:"current"`
	Data    []wireImage `json:"data"`
	Pages   int         `json:"pages"`
	Size    int         `json:"size"`
	Total   int64       `json:"total"`
}

// listImages is GET /v1/{project_id}/images. The service pages as
// terraform-provider-huaweicloud PR 3026 and chnsz/golangsdk PR 334 show:
// offset only picks the page (offset / limit), the page starts at page ×
// limit, "size" is the page size (the limit), "current" the page index, and a
// page starting past the end is 400 ModelArts.6400 "fromIndex(200) >
// toIndex(33)" (Java's subList: starting at the end is an empty page).
func (s *Server) listImages(c *call) reply {
	q, msg := s.parseListQuery(c.r)
	if msg != "" {
		return modelArtsError(http.StatusBadRequest, CodeParameterError, "Parameter error. "+msg)
	}
	from := q.offset / q.limit * q.limit
	page := wireImageList{Data: []wireImage{}, Size: q.limit, Current: q.offset / q.limit}
	var ids []string
	total := 0
	for img := range inOrder(s.images.sortedBy(q.sortKey), q.descending) {
		if !q.matches(img) {
			continue
		}
		if total >= from && total-from < q.limit {
			page.Data = append(page.Data, toWire(*img))
			ids = append(ids, img.ID)
		}
		total++
	}
	if from > total {
		return modelArtsError(http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("fromIndex(%d) > toIndex(%d)", from, total))
	}
	page.Total = int64(total)
	page.Pages = (total + q.limit - 1) / q.limit
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
		sortKey:     cmp.Or(v.Get("sort_key"), defaultSortKey),
	}
	if q.imageType == "" && !s.untypedAll.Load() {
		q.imageType = UntypedBuildIn // the documented default of type: see UntypedBuildIn
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
	if sortKeys[q.sortKey] == nil {
		return q, "sort_key must be update_at, create_at or name"
	}
	switch strings.ToUpper(v.Get("sort_dir")) {
	case "", "DESC":
		q.descending = true
	case "ASC":
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
