// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestSampleImagesCoverTheContract(t *testing.T) {
	images := SampleImages()
	ids := SampleIDs()
	if len(images) != len(ids) {
		t.Fatalf("%d images, %d ids", len(images), len(ids))
	}
	seen := map[string]bool{}
	for i, img := range images {
		if img.ID != ids[i] || !uuidPattern.MatchString(img.ID) || seen[img.ID] {
			t.Errorf("image %d: id %q (SampleIDs says %q)", i, img.ID, ids[i])
		}
		seen[img.ID] = true
		seen["status:"+img.Status] = true
		seen["arch:"+img.Arch] = true
		seen["type:"+img.Type] = true
		seen["visibility:"+img.Visibility] = true
		if img.Type == "BUILD_IN" && img.Size == nil {
			seen["built-in without size"] = true
		}
	}
	want := []string{"arch:x86_64", "arch:aarch64", "type:BUILD_IN", "type:DEDICATED",
		"visibility:PRIVATE", "visibility:PUBLIC", "built-in without size", "status:FROZEN"}
	for _, st := range modelarts.Statuses {
		want = append(want, "status:"+st)
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("no sample image with %s", w)
		}
	}
	// Fresh copies: changing one call's result does not change the next.
	images[0].Name = "changed"
	*images[1].Size = 0
	if again := SampleImages(); again[0].Name == "changed" || *again[1].Size == 0 {
		t.Error("SampleImages shares memory between calls")
	}
}

func TestGenerateImages(t *testing.T) {
	a, b := GenerateImages(10000, 42), GenerateImages(10000, 42)
	if !slices.EqualFunc(a, b, sameImage) {
		t.Fatal("same seed, different images")
	}
	if c := GenerateImages(10, 43); sameImage(c[0], a[0]) {
		t.Error("different seeds, same first image")
	}
	ids := map[string]bool{}
	names := map[string]bool{}
	statuses := map[string]int{}
	for _, img := range a {
		if !uuidPattern.MatchString(img.ID) || ids[img.ID] || names[img.Name] {
			t.Fatalf("bad or repeated id/name: %q %q", img.ID, img.Name)
		}
		ids[img.ID], names[img.Name] = true, true
		statuses[img.Status]++
	}
	for _, st := range append(slices.Clone(modelarts.Statuses), "FROZEN") {
		if statuses[st] == 0 {
			t.Errorf("no generated image in status %s", st)
		}
	}
	if len(GenerateImages(0, 1)) != 0 {
		t.Error("GenerateImages(0) is not empty")
	}
}

func sameImage(a, b modelarts.Image) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Status == b.Status && a.CreateAt == b.CreateAt &&
		(a.Size == nil) == (b.Size == nil) && (a.Size == nil || *a.Size == *b.Size)
}

func TestTenThousandImages(t *testing.T) {
	s, clock := startServer(t, Options{Images: GenerateImages(10000, 1), UntypedListing: UntypedAll})
	seen := 0
	for offset := 0; ; offset += DefaultMaxPageSize {
		ids, page := listIDs(t, s, clock, "limit=1000&offset="+strconv.Itoa(offset))
		if page.Total != 10000 {
			t.Fatalf("total %d", page.Total)
		}
		if len(ids) == 0 {
			break
		}
		seen += len(ids)
	}
	if seen != 10000 {
		t.Fatalf("paged %d images", seen)
	}
	if got := s.RequestsWithStatus(OpListImage, http.StatusOK); got != 11 {
		t.Errorf("%d list calls", got)
	}
}

func BenchmarkShowImage(b *testing.B) {
	clock := newFakeClock()
	s := NewServer(Options{Images: GenerateImages(10000, 1), Now: clock.Now})
	defer s.Close()
	ids := s.Images()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, s.URL+imagePath(s, ids[i%len(ids)].ID), nil)
			i++
			req.Header.Set("X-Project-Id", s.ProjectID())
			demoSigner(clock).sign(req, nil)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}
