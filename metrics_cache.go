// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"cmp"
	"compress/flate"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/modelarts-exporter/modelarts_exporter/collector"
)

// exposition writes an answer: the image value families, encoded once per
// change of the values and cached per format and content encoding, then the
// scrape families and own metrics. It negotiates as promhttp's defaults do.
type exposition struct {
	logger   log.Logger
	own      prometheus.Gatherer
	formats  []expfmt.Format // offered formats, by preference
	uncached bool            // encode the value families every time

	mu    sync.Mutex
	fp    uint64                         // collector.ValueFingerprint of the values parts holds
	parts map[partKey]func() encodedPart // sync.OnceValue

	valueEncodings atomic.Int64 // cache misses
	lastRender     atomic.Int64 // the time.Duration the last answer took to render
}

type partKey struct {
	format expfmt.Format
	gzip   bool
}

// maxCachedParts bounds the memory of an exposition's parts: a further format or encoding drops the others.
const maxCachedParts = 4

func newExposition(logger log.Logger, own prometheus.Gatherer) *exposition {
	return &exposition{logger: logger, own: own, formats: expfmt.DefaultAcceptedFormats()}
}

// serve answers r with the metrics of results, or the families its name[]
// parameters select, and returns how long that took. As promhttp's
// ContinueOnError, it serves what was gathered (results hold a project at least).
func (x *exposition) serve(w http.ResponseWriter, r *http.Request, results []collector.ProjectResult) time.Duration {
	start := time.Now()
	own, err := x.own.Gather()
	if err != nil {
		level.Error(x.logger).Log("msg", "Error gathering the exporter's own metrics", "err", err)
	}
	format := expfmt.NegotiateAccept(r.Header, x.formats...)
	gz := acceptsGzip(r.Header["Accept-Encoding"])
	h := w.Header()
	h["Vary"] = append(h["Vary"], "Accept", "Accept-Encoding")
	h.Set("Content-Type", string(format))
	if gz {
		h.Set("Content-Encoding", "gzip")
	}
	names := r.URL.Query()["name[]"]
	var values encodedPart
	if names == nil {
		values = x.values(format, gz, results)
	}
	out := &errWriter{w: w}
	fresh := func(w io.Writer) error { return encodeFresh(w, format, names, own, results) }
	if err := writeBody(out, gz, values, fresh); err != nil {
		if out.err != nil {
			level.Debug(x.logger).Log("msg", "Answer not sent in full: the client went away or stopped reading", "err", err)
		} else {
			level.Error(x.logger).Log("msg", "Error encoding metrics", "err", err)
		}
	}
	took := time.Since(start)
	if out.err == nil { // a client that stopped reading says nothing of the time a render takes
		x.lastRender.Store(int64(took))
	}
	return took
}

// encodeFresh encodes in format the scrape families of results and own, then what ends the
// format (OpenMetrics' # EOF); when names select families, only those, and the value families
// too (not cached).
func encodeFresh(w io.Writer, format expfmt.Format, names []string, own []*dto.MetricFamily, results []collector.ProjectResult) error {
	enc := collector.NewEncoder(w, format)
	emit := enc.Emit
	if names != nil {
		emit = func(mf *dto.MetricFamily, continued bool) error {
			if !slices.Contains(names, mf.GetName()) {
				return nil
			}
			return enc.Emit(mf, continued)
		}
	}
	err := collector.EmitScrapeFamilies(results, enc.PartImages(), emit)
	if err == nil && names != nil {
		err = collector.EmitValueFamilies(results, enc.PartImages(), emit)
	}
	for ; err == nil && len(own) > 0; own = own[1:] {
		err = emit(own[0], false)
	}
	if err != nil {
		return err
	}
	return enc.Close()
}

// values returns the value families of results encoded, from parts when their fingerprint is:
// parts holds those of the last values seen. Concurrent scrapes that miss together encode once.
func (x *exposition) values(format expfmt.Format, gz bool, results []collector.ProjectResult) encodedPart {
	build := func() (part encodedPart) {
		x.valueEncodings.Add(1)
		var err error
		part.sum, err = encode(&part.data, gz, false, gzipSum{}, func(w io.Writer) error {
			enc := collector.NewEncoder(w, format)
			return collector.EmitValueFamilies(results, enc.PartImages(), enc.Emit)
		})
		if err != nil {
			level.Error(x.logger).Log("msg", "Error encoding the image metrics", "err", err)
		}
		return part
	}
	if x.uncached {
		return build()
	}
	fp := collector.ValueFingerprint(results)
	key := partKey{format, gz}
	x.mu.Lock()
	p := x.parts[key]
	if x.parts == nil || x.fp != fp || p == nil && len(x.parts) >= maxCachedParts {
		x.fp, x.parts, p = fp, make(map[partKey]func() encodedPart), nil
	}
	if p == nil {
		p = sync.OnceValue(build)
		x.parts[key] = p
	}
	x.mu.Unlock()
	return p()
}

// encodedPart is the start of an answer as sent (with gzip: a raw deflate
// stream ending at a sync flush, and the sum of what it holds).
type encodedPart struct {
	data chunks
	sum  gzipSum
}

// chunks is a byte sequence kept in pieces, so that growing it never copies.
type chunks [][]byte

func (c *chunks) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(*c) == 0 || len((*c)[len(*c)-1]) == chunkSize {
			*c = append(*c, make([]byte, 0, chunkSize))
		}
		last := &(*c)[len(*c)-1]
		k := min(len(p), chunkSize-len(*last))
		*last, p = append(*last, p[:k]...), p[k:]
	}
	return n, nil
}

const chunkSize = 64 << 10

// gzipSum is the CRC-32 and size (mod 2^32) of a gzip member's data, its trailer.
type gzipSum struct{ crc, size uint32 }

func (s *gzipSum) Write(p []byte) (int, error) {
	s.crc = crc32.Update(s.crc, crc32.IEEETable, p)
	s.size += uint32(len(p))
	return len(p), nil
}

// writeBody writes values, then what fresh writes; with gz, as one gzip member.
func writeBody(w *errWriter, gz bool, values encodedPart, fresh func(io.Writer) error) error {
	if gz {
		_, _ = w.Write(gzipHeader) // w returns a failure again at the next write
	}
	for _, chunk := range values.data {
		_, _ = w.Write(chunk)
	}
	sum, err := encode(w, gz, true, values.sum, fresh)
	if err == nil && gz {
		_, err = w.Write(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, sum.crc), sum.size))
	}
	return cmp.Or(err, w.err)
}

// encode runs write on w or, with gz, on a writer whose bytes it compresses into w, continuing
// sum; it returns the sum then. It compresses on a goroutine of its own, a block at a time, so
// that encoding an answer and compressing it use two cores (an io.Pipe, which hands over one
// write at a time, was 20% slower), and ends the deflate stream at a sync flush (so that
// another can follow) or, when last, with the final block.
func encode(w io.Writer, gz, last bool, sum gzipSum, write func(io.Writer) error) (gzipSum, error) {
	if !gz {
		return sum, write(w)
	}
	fw := flateWriters.Get().(*flate.Writer)
	fw.Reset(w)
	bw := &blockWriter{blocks: make(chan []byte, deflaterBlocks), free: make(chan []byte, deflaterBlocks)}
	for range deflaterBlocks {
		bw.free <- make([]byte, 0, chunkSize)
	}
	done := make(chan error, 1)
	go func() {
		var err error
		for b := range bw.blocks {
			if err == nil {
				_, _ = sum.Write(b)
				if _, err = fw.Write(b); err != nil {
					bw.failed.Store(true)
				}
			}
			bw.free <- b[:0]
		}
		done <- err
	}()
	buf := bufio.NewWriterSize(bw, chunkSize)
	err := write(buf)
	if err == nil {
		err = buf.Flush()
	}
	close(bw.blocks)
	err = cmp.Or(<-done, err) // the writer's own failure says less than w's
	if err == nil && last {
		err = fw.Close()
	} else if err == nil {
		err = fw.Flush()
	}
	fw.Reset(io.Discard)
	flateWriters.Put(fw)
	return sum, err
}

// deflaterBlocks are the blocks of chunkSize an encode keeps: filled, being compressed, free.
const deflaterBlocks = 3

// blockWriter hands what it is written to encode's goroutine in blocks of its own, and fails
// once compressing has failed (the client went away), so that encoding stops too.
type blockWriter struct {
	blocks, free chan []byte
	failed       atomic.Bool
}

func (b *blockWriter) Write(p []byte) (int, error) {
	if b.failed.Load() {
		return 0, errors.New("compressing the answer failed")
	}
	b.blocks <- append(<-b.free, p...)
	return len(p), nil
}

// gzipHeader is what compress/gzip writes at flate.BestSpeed: no name, no
// time, "fastest" extra flags, unknown OS.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255}

// flateWriters compress at flate.BestSpeed: twice as fast as the default
// level for a fifth more bytes, as a scrape's time matters more than its size.
var flateWriters = sync.Pool{New: func() any {
	fw, _ := flate.NewWriter(nil, flate.BestSpeed)
	return fw
}}

// errWriter remembers the first error of w and writes nothing after it.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// acceptsGzip says whether promhttp would gzip for the Accept-Encoding headers: when gzip's
// highest q (as "gzip" or "*") is above 0 and above identity's, which wins a tie. As promhttp's
// parser, it reads a header up to an element it cannot read.
func acceptsGzip(headers []string) bool {
	identity, gzip := -1.0, -1.0
	for _, h := range headers {
	elements:
		for elem := range strings.SplitSeq(h, ",") {
			value, params, _ := strings.Cut(elem, ";")
			value, q := strings.TrimSpace(value), 1.0
			for param := range strings.SplitSeq(params, ";") {
				if k, v, _ := strings.Cut(param, "="); strings.TrimSpace(k) == "q" {
					var err error
					if q, err = strconv.ParseFloat(qValue.FindString(strings.TrimSpace(v)), 64); err != nil {
						break elements
					}
				}
			}
			if value == "" {
				break
			}
			if value == "*" || value == "identity" {
				identity = max(identity, q)
			}
			if value == "*" || value == "gzip" {
				gzip = max(gzip, q)
			}
		}
	}
	return gzip > max(identity, 0)
}

// qValue is what promhttp's parser reads of a q value: 0 or 1, then maybe a dot and digits.
var qValue = regexp.MustCompile(`^[01](\.[0-9]*)?`)
