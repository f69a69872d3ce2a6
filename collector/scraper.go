// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"context"
	"sync"
	"time"

	"github.com/go-kit/log"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// Project is one configured cloud project, ready to be scraped.
type Project struct {
	Name        string                 // the value of the project label
	Client      modelarts.API          // see Scraper.Close
	ImageIDs    []string               // the configured image IDs, lowercase UUIDs
	Discovery   *modelarts.ListOptions // when not nil, every image ListImage returns with these filters is exported too
	Concurrency int                    // bounds the API calls in flight
	// MinRefreshInterval: scrapes less than this after the start of the last
	// fetch are answered from it, without API calls.
	MinRefreshInterval time.Duration
	ServeStaleFor      time.Duration // how long the last good values of an image are exported after fetching it failed
}

// ImageResult is the outcome of fetching one image in one scrape.
type ImageResult struct {
	ID    string
	Image *modelarts.Image // the values fetched, or when Err is set the last good ones if ServeStaleFor allows
	Err   error
	// LastSuccess is the start of the last successful fetch of the image;
	// zero when there was none, or since it was found missing.
	LastSuccess time.Time
}

// ProjectResult is the outcome of scraping one project.
type ProjectResult struct {
	Name     string
	Images   []ImageResult
	Up       bool          // false when the credentials were refused or no call reached the API
	Duration time.Duration // of the fetch behind this result
	Err      error         // why the project is down, its discovery failed or the scrape ended before the fetch did
	Start    time.Time     // of the fetch behind this result; zero before the first

	values uint64 // valuesHash of this result; 0: not computed (a result made elsewhere)
}

// Scraper fetches the images of every project. It keeps, per project, the
// last good values of the images and the fetch that concurrent scrapes share.
type Scraper struct {
	states []*projectState
}

// NewScraper returns a Scraper for the given projects.
func NewScraper(logger log.Logger, projects []Project) *Scraper {
	s := &Scraper{states: make([]*projectState, len(projects))}
	for i, p := range projects {
		s.states[i] = newProjectState(&p, logger, time.Now)
	}
	return s
}

// Scrape fetches every project concurrently; when ctx ends, the images not
// fetched yet report down (or stale).
func (s *Scraper) Scrape(ctx context.Context) []ProjectResult {
	results := make([]ProjectResult, len(s.states))
	var wg sync.WaitGroup
	for i, ps := range s.states {
		wg.Go(func() { results[i] = ps.scrape(ctx) })
	}
	wg.Wait()
	return results
}

// ProjectNames returns the names of the projects, as configured.
func (s *Scraper) ProjectNames() []string {
	names := make([]string, len(s.states))
	for i, ps := range s.states {
		names[i] = ps.project.Name
	}
	return names
}

// ScrapeProject is Scrape for the project called name alone; nil when there is none.
func (s *Scraper) ScrapeProject(ctx context.Context, name string) []ProjectResult {
	for _, ps := range s.states {
		if ps.project.Name == name {
			return []ProjectResult{ps.scrape(ctx)}
		}
	}
	return nil
}

// Latest returns, without an API call, the result of each project's newest fetch.
func (s *Scraper) Latest() []ProjectResult {
	results := make([]ProjectResult, len(s.states))
	for i, ps := range s.states {
		ps.mu.Lock()
		results[i] = ps.latest // shared: recorded results never change
		ps.mu.Unlock()
	}
	return results
}

// Close closes the idle connections of the projects' clients, for a Scraper
// replaced by a reload; fetches still running go on.
func (s *Scraper) Close() {
	for _, ps := range s.states {
		if c, ok := ps.project.Client.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}
