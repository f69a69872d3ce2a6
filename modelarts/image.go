// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

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
// Every field is optional in practice; unknown fields in the response are ignored.
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
	// Size is the image size in KB as documented; nil when the API leaves it out
	// (built-in images).
	Size *int64 `json:"size"`
	// CreateAt and UpdateAt are UTC epoch milliseconds; 0 when absent.
	CreateAt int64 `json:"create_at"`
	UpdateAt int64 `json:"update_at"`
}

// ImageList is one page of ListImage.
type ImageList struct {
	Current int     `json:"current"`
	Data    []Image `json:"data"`
	Pages   int     `json:"pages"`
	Size    int     `json:"size"`
	Total   int64   `json:"total"`
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
