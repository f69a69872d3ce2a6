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
	// Name is the value of the project label.
	Name string
	// Client talks to the project's ModelArts API. If it has a
	// CloseIdleConnections method, as *modelarts.Client does, Scraper.Close
	// calls it.
	Client modelarts.API
	// ImageIDs are the configured image IDs, lowercase UUIDs.
	ImageIDs []string
	// Discovery, when not nil, also exports every image ListImage returns
	// with these filters (Limit and Offset are ignored).
	Discovery *modelarts.ListOptions
	// Concurrency bounds the API calls in flight for this project.
	Concurrency int
	// MinRefreshInterval: scrapes less than this after the start of the last
	// fetch are answered from it, without API calls. 0 fetches every scrape.
	MinRefreshInterval time.Duration
	// ServeStaleFor is how long the last good values of an image are exported
	// after fetching it failed, with modelarts_image_up 0. 0 serves none.
	ServeStaleFor time.Duration
}

// ImageResult is the outcome of fetching one image in one scrape.
type ImageResult struct {
	ID string
	// Image holds the values to export: the ones fetched, or, when Err is
	// set, the last good ones (stale) if ServeStaleFor allows; else nil.
	Image *modelarts.Image
	// Err is why the fetch failed; nil on success.
	Err error
	// LastSuccess is when the image was last fetched successfully (the start
	// of that fetch); zero when it never was, or since it was found missing.
	LastSuccess time.Time
}

// ProjectResult is the outcome of scraping one project.
type ProjectResult struct {
	Name   string
	Images []ImageResult
	// Up is false when the credentials were refused or no call reached the API.
	Up bool
	// Duration is how long the fetch behind this result took.
	Duration time.Duration
	// Err is why the project is down (when no call got an answer: the first
	// image's error), its discovery failed or the scrape ended before the
	// fetch did; nil otherwise.
	Err error
	// Start is when the fetch behind this result began; zero in a result of
	// Latest for a project not fetched yet.
	Start time.Time
}

// Scraper fetches the images of every project. It keeps, per project, the
// last good values of the images and the fetch in flight, so that
// concurrent scrapes share one set of API calls; see Project for the knobs.
type Scraper struct {
	states []*projectState
}

// NewScraper returns a Scraper for the given projects.
func NewScraper(logger log.Logger, projects []Project) *Scraper {
	return newScraper(logger, projects, time.Now)
}

// newScraper is NewScraper with a clock for the refresh interval and the age
// of stale values.
func newScraper(logger log.Logger, projects []Project, now func() time.Time) *Scraper {
	s := &Scraper{states: make([]*projectState, len(projects))}
	for i, p := range projects {
		s.states[i] = newProjectState(&p, logger, now)
	}
	return s
}

// Scrape fetches every project concurrently. ctx bounds the wait: when it
// ends, the images not fetched yet report down (or stale).
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

// ScrapeProject is Scrape for the project called name alone; nil when there
// is none. It shares fetches with Scrape as concurrent Scrapes do.
func (s *Scraper) ScrapeProject(ctx context.Context, name string) []ProjectResult {
	for _, ps := range s.states {
		if ps.project.Name == name {
			return []ProjectResult{ps.scrape(ctx)}
		}
	}
	return nil
}

// Latest returns, without any API call, the result of each project's newest
// fetch, complete or cut short. A project not fetched yet has only its name.
func (s *Scraper) Latest() []ProjectResult {
	results := make([]ProjectResult, len(s.states))
	for i, ps := range s.states {
		results[i] = ps.latestResult()
	}
	return results
}

// Close closes the idle connections of the projects' API clients, for a
// Scraper that is being replaced by a reload: they would otherwise stay open
// until their idle timeout. Fetches still running go on; their connections
// are closed once they have been idle for the timeout.
func (s *Scraper) Close() {
	for _, ps := range s.states {
		if c, ok := ps.project.Client.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}
