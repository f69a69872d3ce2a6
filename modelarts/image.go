// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// The documented image states (ShowImage, field "status").
const (
	StatusInit         = "INIT"
	StatusCreating     = "CREATING"
	StatusCreateFailed = "CREATE_FAILED"
	StatusError        = "ERROR"
	StatusDeleted      = "DELETED"
	StatusActive       = "ACTIVE"
)

// Statuses lists the documented image states in the order of the API reference.
var Statuses = []string{StatusInit, StatusCreating, StatusCreateFailed, StatusError, StatusDeleted, StatusActive}

// Image is one ModelArts development image as ShowImage and ListImage return it.
type Image struct {
	ID                   string   `json:"id"`
	Name                 string   `json:"name"`
	Arch                 string   `json:"arch"`
	Type                 string   `json:"type"`
	Visibility           string   `json:"visibility"`
	Status               string   `json:"status"`
	StatusMessage        string   `json:"status_message"`
	Description          string   `json:"description"`
	Namespace            string   `json:"namespace"`
	Origin               string   `json:"origin"`
	ServiceType          string   `json:"service_type"`
	SWRPath              string   `json:"swr_path"`
	Tag                  string   `json:"tag"`
	WorkspaceID          string   `json:"workspace_id"`
	DevServices          []string `json:"dev_services"`
	ResourceCategories   []string `json:"resource_categories"`
	SupportResCategories []string `json:"support_res_categories"`
	Size                 *int64   `json:"size"`      // in KB as documented; nil when left out (built-in images)
	CreateAt             int64    `json:"create_at"` // UTC epoch milliseconds; 0 when absent
	UpdateAt             int64    `json:"update_at"` // UTC epoch milliseconds; 0 when absent
}

// ImageList is one page of ListImage.
type ImageList struct {
	Current int `json:"current"`
	// Data are the images with an id (in lower case) and a status; Invalid the
	// other elements, in page order: one bad image does not spoil the page.
	Data    []Image        `json:"data"`
	Invalid []InvalidImage `json:"-"`
	Pages   int            `json:"pages"`
	Size    int            `json:"size"`
	Total   int64          `json:"total"`
}

// InvalidImage is an element of a ListImage page that could not be decoded or lacks id or status.
type InvalidImage struct {
	ID  string    // in lower case; "" when it has none or it could not be read
	Err *APIError // wraps ErrMalformedResponse and names the field at fault
}

// Records is the number of elements of the page's data, decoded or not.
func (l *ImageList) Records() int { return len(l.Data) + len(l.Invalid) }

// check lower-cases the id of img, as configured ids are, and names the first field the client
// needs that img lacks: "id", "status" or "" when none.
func (img *Image) check() (missing string) {
	img.ID = strings.ToLower(img.ID)
	switch {
	case img.ID == "":
		return "id"
	case img.Status == "":
		return "status"
	}
	return ""
}

// UnmarshalJSON decodes a page at once when every element decodes, else element by element:
// one that does not, or lacks id or status, goes to Invalid instead of failing the page.
func (l *ImageList) UnmarshalJSON(b []byte) error {
	type page ImageList // without UnmarshalJSON
	var whole page
	if err := json.Unmarshal(b, &whole); err == nil {
		*l = ImageList(whole)
		l.Data = l.Data[:0] // the elements that check, filtered in place
		for i, img := range whole.Data {
			l.add(i, img)
		}
		return nil
	}
	var raw struct {
		page
		Data []json.RawMessage `json:"data"` // shadows page.Data
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*l = ImageList(raw.page)
	for i, elem := range raw.Data {
		var img Image
		if err := json.Unmarshal(elem, &img); err != nil {
			var id struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(elem, &id) // "" when unreadable
			l.invalid(strings.ToLower(id.ID), fmt.Errorf("decode data[%d]: %w", i, err))
			continue
		}
		l.add(i, img)
	}
	return nil
}

// add appends img, element i of the page's data, to Data, or to Invalid when it lacks a field.
func (l *ImageList) add(i int, img Image) {
	if missing := img.check(); missing != "" {
		l.invalid(img.ID, fmt.Errorf("data[%d] has no %s", i, missing))
		return
	}
	l.Data = append(l.Data, img)
}

func (l *ImageList) invalid(id string, cause error) {
	l.Invalid = append(l.Invalid, InvalidImage{ID: id, Err: &APIError{Operation: OpListImage, Class: ErrMalformedResponse, Cause: cause}})
}

// ListOptions are the ListImage query parameters. Zero values are left out of the query.
type ListOptions struct {
	Limit       int
	Offset      int
	Name        string
	Namespace   string
	ServiceType string
	Type        string
	WorkspaceID string
}

// query returns the non-zero options as ListImage query parameters.
func (o ListOptions) query() url.Values {
	q := url.Values{}
	for key, value := range map[string]any{"name": o.Name, "namespace": o.Namespace, "service_type": o.ServiceType,
		"type": o.Type, "workspace_id": o.WorkspaceID, "limit": o.Limit, "offset": o.Offset} {
		if value != "" && value != 0 { // a string "0" is not the int 0
			q.Set(key, fmt.Sprint(value))
		}
	}
	return q
}
