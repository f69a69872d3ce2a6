// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"time"
)

// expiresAtLayout is IAM's timestamp format: RFC 3339, UTC, microseconds.
const expiresAtLayout = "2006-01-02T15:04:05.000000Z"

const maxTokenRequestBody = 64 << 10

// tokenRequest is the password-method body of POST /v3/auth/tokens.
type tokenRequest struct {
	Auth struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password struct {
				User struct {
					Name     string `json:"name"`
					Password string `json:"password"`
					Domain   struct {
						Name string `json:"name"`
					} `json:"domain"`
				} `json:"user"`
			} `json:"password"`
		} `json:"identity"`
		Scope *struct {
			Project *struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"project"`
		} `json:"scope"`
	} `json:"auth"`
}

type idName struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type tokenProject struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Domain idName `json:"domain"`
}

type tokenUser struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Domain idName `json:"domain"`
}

type tokenBody struct {
	Token struct {
		ExpiresAt string        `json:"expires_at"`
		IssuedAt  string        `json:"issued_at"`
		Methods   []string      `json:"methods"`
		Project   *tokenProject `json:"project,omitempty"`
		User      tokenUser     `json:"user"`
		Roles     []idName      `json:"roles"`
		Catalog   []any         `json:"catalog"`
	} `json:"token"`
}

// createToken is POST /v3/auth/tokens with the password method.
func (s *Server) createToken(c *call) reply {
	req, ok := decodeTokenRequest(c.r)
	if !ok {
		return iamError(http.StatusBadRequest, "The request body is invalid.")
	}
	u := req.Auth.Identity.Password.User
	if !s.checkPassword(u.Domain.Name, u.Name, u.Password) {
		return iamError(http.StatusUnauthorized, MsgWrongPassword)
	}
	projectID, ok := s.scopeProject(req)
	if !ok {
		return iamError(http.StatusUnauthorized, iamMessage(http.StatusUnauthorized))
	}
	user := User{Domain: u.Domain.Name, Name: u.Name}
	issued := s.now().UTC()
	expires := issued.Add(s.opts.TokenTTL)
	value := s.issueToken(user, projectID, expires)

	rp := jsonReply(http.StatusCreated, s.tokenBody(user, projectID, issued, expires))
	rp.header = http.Header{"X-Subject-Token": {value}}
	return rp
}

func decodeTokenRequest(r *http.Request) (tokenRequest, bool) {
	var req tokenRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTokenRequestBody))
	if err != nil || json.Unmarshal(body, &req) != nil {
		return req, false
	}
	return req, slices.Contains(req.Auth.Identity.Methods, "password")
}

// scopeProject returns the project the token is for: "" without a scope, the
// server's project when named by its name (the region) or id; ok is false for
// any other project.
func (s *Server) scopeProject(req tokenRequest) (projectID string, ok bool) {
	scope := req.Auth.Scope
	if scope == nil || scope.Project == nil {
		return "", true
	}
	p := scope.Project
	if p.ID == s.opts.ProjectID || (p.ID == "" && p.Name == s.opts.Region) {
		return s.opts.ProjectID, true
	}
	return "", false
}

func (s *Server) tokenBody(u User, projectID string, issued, expires time.Time) tokenBody {
	var b tokenBody
	t := &b.Token
	t.ExpiresAt = expires.Format(expiresAtLayout)
	t.IssuedAt = issued.Format(expiresAtLayout)
	t.Methods = []string{"password"}
	domain := idName{ID: fakeID("domain", u.Domain), Name: u.Domain}
	t.User = tokenUser{ID: fakeID("user", u.Domain+"/"+u.Name), Name: u.Name, Domain: domain}
	if projectID != "" {
		t.Project = &tokenProject{ID: projectID, Name: s.opts.Region, Domain: domain}
	}
	t.Roles = []idName{{ID: fakeID("role", "te_admin"), Name: "te_admin"}}
	t.Catalog = []any{}
	return b
}

// fakeID derives a stable 32-hex id, like IAM's, from a name.
func fakeID(kind, name string) string {
	sum := sha256.Sum256([]byte(kind + ":" + name))
	return hex.EncodeToString(sum[:16])
}

type projectItem struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DomainID    string `json:"domain_id"`
	ParentID    string `json:"parent_id"`
	Description string `json:"description"`
	Enabled     bool   `json:"enabled"`
	IsDomain    bool   `json:"is_domain"`
}

type projectList struct {
	Links    map[string]any `json:"links"`
	Projects []projectItem  `json:"projects"`
}

// listProjects is GET /v3/projects, optionally filtered by ?name=.
func (s *Server) listProjects(c *call) reply {
	domainID := fakeID("domain", "owner-of-"+s.opts.ProjectID)
	list := projectList{
		Links:    map[string]any{"self": "/v3/projects", "previous": nil, "next": nil},
		Projects: []projectItem{},
	}
	if name := c.r.URL.Query().Get("name"); name == "" || name == s.opts.Region {
		list.Projects = append(list.Projects, projectItem{
			ID: s.opts.ProjectID, Name: s.opts.Region, DomainID: domainID, ParentID: domainID, Enabled: true,
		})
	}
	return jsonReply(http.StatusOK, list)
}
