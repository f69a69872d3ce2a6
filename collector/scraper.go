// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// Project is one configured cloud project, ready to be scraped.
type Project struct {
	// Name is the value of the project label.
	Name string
	// Client talks to the project's ModelArts API.
	Client modelarts.API
	// ImageIDs are the configured image IDs, lowercase UUIDs.
	ImageIDs []string
	// Concurrency bounds the API calls in flight for this project.
	Concurrency int
}

// ImageResult is the outcome of fetching one image in one scrape.
type ImageResult struct {
	ID string
	// Image is nil when the fetch failed.
	Image *modelarts.Image
	// Err is why the fetch failed; nil on success.
	Err error
}

// ProjectResult is the outcome of scraping one project.
type ProjectResult struct {
	Name   string
	Images []ImageResult
	// Up is false when the credentials were refused or no call reached the API.
	Up       bool
	Duration time.Duration
}

// Scraper fetches the configured images of every project.
type Scraper struct {
	logger   log.Logger
	projects []Project
}

// NewScraper returns a Scraper for the given projects.
func NewScraper(logger log.Logger, projects []Project) *Scraper {
	return &Scraper{logger: logger, projects: projects}
}

// Scrape fetches every project concurrently. ctx bounds every API call; when
// it ends, the calls still running fail and their images report down.
func (s *Scraper) Scrape(ctx context.Context) []ProjectResult {
	results := make([]ProjectResult, len(s.projects))
	var wg sync.WaitGroup
	for i := range s.projects {
		wg.Go(func() {
			results[i] = s.scrapeProject(ctx, &s.projects[i])
		})
	}
	wg.Wait()
	return results
}

// errSkipped marks images not fetched because the credentials were refused
// earlier in the same scrape.
var errSkipped = errors.New("not fetched: the credentials of this project were refused in this scrape")

func (s *Scraper) scrapeProject(ctx context.Context, p *Project) ProjectResult {
	start := time.Now()
	res := ProjectResult{Name: p.Name, Images: make([]ImageResult, len(p.ImageIDs))}
	if len(p.ImageIDs) == 0 {
		res.Up = true
		res.Duration = time.Since(start)
		return res
	}

	// The first image is fetched alone: if the credentials are wrong, a scrape
	// costs one refused call, not one per image (the cloud locks an AK/SK pair
	// after five bad signatures).
	res.Images[0] = s.fetch(ctx, p, p.ImageIDs[0])
	if authRefused(res.Images[0].Err) {
		for i, id := range p.ImageIDs[1:] {
			res.Images[i+1] = ImageResult{ID: id, Err: errSkipped}
		}
	} else {
		s.fetchConcurrently(ctx, p, res.Images[1:], p.ImageIDs[1:])
	}

	res.Up = projectUp(res.Images)
	res.Duration = time.Since(start)
	return res
}

func (s *Scraper) fetchConcurrently(ctx context.Context, p *Project, out []ImageResult, ids []string) {
	limit := max(p.Concurrency, 1)
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = s.fetch(ctx, p, id)
		})
	}
	wg.Wait()
}

func (s *Scraper) fetch(ctx context.Context, p *Project, id string) ImageResult {
	img, err := p.Client.ShowImage(ctx, id)
	if err != nil {
		s.logFailure(p.Name, id, err)
		return ImageResult{ID: id, Err: err}
	}
	return ImageResult{ID: id, Image: img}
}

// logFailure logs one failed fetch, once, with what support needs to trace it.
func (s *Scraper) logFailure(project, id string, err error) {
	kv := []any{"msg", "Failed to fetch image", "project", project, "image", id}
	if apiErr := modelarts.AsAPIError(err); apiErr != nil {
		kv = append(kv, "code", apiErr.StatusCode, "error_code", apiErr.ErrorCode, "request_id", apiErr.RequestID)
	}
	kv = append(kv, "err", err)
	level.Warn(s.logger).Log(kv...)
}

func authRefused(err error) bool {
	return errors.Is(err, modelarts.ErrUnauthorized) || errors.Is(err, modelarts.ErrForbidden)
}

// projectUp is false when the credentials were refused, or when not one call
// got an answer from the API.
func projectUp(images []ImageResult) bool {
	answered := false
	for _, r := range images {
		if authRefused(r.Err) {
			return false
		}
		if r.Err == nil || !errors.Is(r.Err, modelarts.ErrUnreachable) {
			answered = true
		}
	}
	return answered
}
