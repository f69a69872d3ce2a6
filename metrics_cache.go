// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"compress/flate"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"slices"
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
	logger  log.Logger
	own     prometheus.Gatherer
	formats []expfmt.Format // offered formats, by preference
	cache   *valueCache     // nil: encode the value families every time

	valueFamiliesEncoded atomic.Int64 // cache misses, by family
	lastRender           atomic.Int64 // the time.Duration the last answer took to render
}

func newExposition(logger log.Logger, own prometheus.Gatherer) *exposition {
	return &exposition{logger: logger, own: own, formats: expfmt.DefaultAcceptedFormats(), cache: &valueCache{}}
}

// serve answers r with the metrics of results, or the families its name[]
// parameters select, and returns how long that took. As promhttp's
// ContinueOnError, it serves what was gathered.
func (x *exposition) serve(w http.ResponseWriter, r *http.Request, results []collector.ProjectResult) time.Duration {
	start := time.Now()
	own, err := x.own.Gather()
	if err != nil {
		level.Error(x.logger).Log("msg", "Error gathering the exporter's own metrics", "err", err)
		if len(own) == 0 && len(results) == 0 {
			http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
			return time.Since(start)
		}
	}
	format := expfmt.NegotiateAccept(r.Header, x.formats...)
	gz := negotiateEncoding(r.Header["Accept-Encoding"], []string{"identity", "gzip"}) == "gzip"
	h := w.Header()
	h["Vary"] = append(h["Vary"], "Accept", "Accept-Encoding")
	h.Set("Content-Type", string(format))
	if gz {
		h.Set("Content-Encoding", "gzip")
	}
	var values encodedPart
	fresh := func(enc *collector.Encoder) error { return emitFresh(own, results, enc.PartImages(), enc.Emit) }
	if names := r.URL.Query()["name[]"]; names != nil {
		fresh = func(enc *collector.Encoder) error {
			emit := func(mf *dto.MetricFamily, continued bool) error {
				if !slices.Contains(names, mf.GetName()) {
					return nil
				}
				return enc.Emit(mf, continued)
			}
			if err := emitFresh(own, results, enc.PartImages(), emit); err != nil {
				return err
			}
			return collector.EmitValueFamilies(results, enc.PartImages(), emit)
		}
	} else {
		values = x.values(format, gz, results)
	}
	out := &errWriter{w: w}
	if err := writeBody(out, format, gz, values, fresh); err != nil {
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

// emitFresh emits own and the scrape families of results, by name.
func emitFresh(own []*dto.MetricFamily, results []collector.ProjectResult, partImages int, emit collector.Emit) error {
	err := collector.EmitScrapeFamilies(results, partImages, func(mf *dto.MetricFamily, continued bool) error {
		for ; !continued && len(own) > 0 && own[0].GetName() < mf.GetName(); own = own[1:] {
			if err := emit(own[0], false); err != nil {
				return err
			}
		}
		return emit(mf, continued)
	})
	for ; err == nil && len(own) > 0; own = own[1:] {
		err = emit(own[0], false)
	}
	return err
}

// values returns the value families of results encoded, from the cache when their fingerprint is.
func (x *exposition) values(format expfmt.Format, gz bool, results []collector.ProjectResult) encodedPart {
	build := func() (part encodedPart) {
		var err error
		part.crc, part.size, err = encode(&part.data, gz, false, 0, 0, func(w io.Writer) error {
			enc := collector.NewEncoder(w, format)
			return collector.EmitValueFamilies(results, enc.PartImages(), func(mf *dto.MetricFamily, continued bool) error {
				if !continued {
					x.valueFamiliesEncoded.Add(1)
				}
				return enc.Emit(mf, continued)
			})
		})
		if err != nil {
			level.Error(x.logger).Log("msg", "Error encoding the image metrics", "err", err)
		}
		return part
	}
	if x.cache == nil {
		return build()
	}
	return x.cache.get(partKey{format, gz}, collector.ValueFingerprint(results), build)
}

// encodedPart is the start of an answer as sent (with gzip: a raw deflate
// stream ending at a sync flush, and the CRC-32 and size of what it holds).
type encodedPart struct {
	data chunks
	crc  uint32
	size uint32
}

// writeBody writes values, then what fresh emits encoded in format, then
// what ends the format (OpenMetrics' # EOF); with gz, as one gzip member.
func writeBody(w io.Writer, format expfmt.Format, gz bool, values encodedPart, fresh func(*collector.Encoder) error) error {
	head := values.data
	if gz {
		head = append(chunks{gzipHeader}, head...)
	}
	if _, err := head.WriteTo(w); err != nil {
		return err
	}
	crc, size, err := encode(w, gz, true, values.crc, values.size, func(w io.Writer) error {
		enc := collector.NewEncoder(w, format)
		if err := fresh(enc); err != nil {
			return err
		}
		return enc.Close()
	})
	if err != nil || !gz {
		return err
	}
	_, err = w.Write(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, crc), size))
	return err
}

// encode runs write on w or, with gz, on a deflater into w that continues crc
// and size and ends as end(last) does; it returns the CRC-32 and size then.
func encode(w io.Writer, gz, last bool, crc, size uint32, write func(io.Writer) error) (uint32, uint32, error) {
	if !gz {
		return crc, size, write(w)
	}
	d := newDeflater(w, crc, size)
	err := write(d)
	if endErr := d.end(last); err == nil {
		err = endErr
	}
	return d.crc, d.size, err
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

// deflater compresses into w and keeps the CRC-32 and size of its gzip member, continued
// from crc and size. It compresses on a goroutine of its own, a block at a time, so that
// encoding an answer and compressing it use two cores.
type deflater struct {
	fw        *flate.Writer
	crc, size uint32 // final once end returned

	block  []byte      // being filled
	blocks chan []byte // full, to compress
	free   chan []byte // compressed, to fill again
	done   chan error  // the first error of fw, when the goroutine ends
	failed atomic.Bool // fw failed: the writer stops taking data
}

const deflaterBlocks = 3 // of chunkSize

func newDeflater(w io.Writer, crc, size uint32) *deflater {
	fw := flateWriters.Get().(*flate.Writer)
	fw.Reset(w)
	d := &deflater{fw: fw, crc: crc, size: size, blocks: make(chan []byte, deflaterBlocks),
		free: make(chan []byte, deflaterBlocks), done: make(chan error, 1)}
	for range deflaterBlocks - 1 {
		d.free <- make([]byte, 0, chunkSize)
	}
	d.block = make([]byte, 0, chunkSize)
	go d.compress()
	return d
}

func (d *deflater) compress() {
	var err error
	for b := range d.blocks {
		if err == nil {
			d.crc = crc32.Update(d.crc, crc32.IEEETable, b)
			d.size += uint32(len(b)) // mod 2^32, as gzip's ISIZE
			if _, err = d.fw.Write(b); err != nil {
				d.failed.Store(true)
			}
		}
		d.free <- b[:0]
	}
	d.done <- err
}

func (d *deflater) Write(p []byte) (int, error) {
	if d.failed.Load() {
		return 0, errors.New("compressing the answer failed")
	}
	n := len(p)
	for len(p) > 0 {
		k := copy(d.block[len(d.block):cap(d.block)], p)
		d.block, p = d.block[:len(d.block)+k], p[k:]
		if len(d.block) == cap(d.block) {
			d.blocks <- d.block
			d.block = <-d.free
		}
	}
	return n, nil
}

// end compresses what is left, ends the stream at a sync flush (so that another can follow)
// or, when last, with the final block, and gives the flate.Writer back; it returns w's first error.
func (d *deflater) end(last bool) error {
	d.blocks <- d.block // maybe empty: writes nothing
	close(d.blocks)
	err := <-d.done
	if err == nil && last {
		err = d.fw.Close()
	} else if err == nil {
		err = d.fw.Flush()
	}
	d.fw.Reset(io.Discard)
	flateWriters.Put(d.fw)
	return err
}

const chunkSize = 64 << 10

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

// WriteTo writes a clone: net.Buffers consumes what it writes, and c is shared.
func (c chunks) WriteTo(w io.Writer) (int64, error) {
	b := net.Buffers(slices.Clone(c))
	return b.WriteTo(w)
}

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

type partKey struct {
	format expfmt.Format
	gzip   bool
}

// maxCachedParts bounds the memory of a valueCache: a further format or encoding drops the others.
const maxCachedParts = 4

// valueCache keeps the encoded value families of the last values seen
// (collector.ValueFingerprint), per format and content encoding. Concurrent
// scrapes that miss together encode once.
type valueCache struct {
	mu    sync.Mutex
	fp    uint64
	parts map[partKey]func() encodedPart // sync.OnceValue
}

func (c *valueCache) get(key partKey, fp uint64, build func() encodedPart) encodedPart {
	c.mu.Lock()
	p := c.parts[key]
	if c.parts == nil || c.fp != fp || p == nil && len(c.parts) >= maxCachedParts {
		c.fp, c.parts, p = fp, make(map[partKey]func() encodedPart), nil
	}
	if p == nil {
		p = sync.OnceValue(build)
		c.parts[key] = p
	}
	c.mu.Unlock()
	return p()
}

// negotiateEncoding picks, as promhttp does, the offer with the highest q in
// the Accept-Encoding headers, the earlier offer on a tie, reading a header up
// to an element it cannot read: identity without one, "" when the best has q=0.
func negotiateEncoding(headers []string, offers []string) string {
	best, bestQ, bestAt := "identity", -1.0, len(offers)
	for _, h := range headers {
	elements:
		for elem := range strings.SplitSeq(h, ",") {
			value, params, _ := strings.Cut(elem, ";")
			value, q := strings.TrimSpace(value), 1.0
			for param := range strings.SplitSeq(params, ";") {
				if k, v, _ := strings.Cut(param, "="); strings.TrimSpace(k) == "q" {
					if q = quality(strings.TrimSpace(v)); q < 0 {
						break elements
					}
				}
			}
			if value == "" {
				break
			}
			for i, offer := range offers {
				if (value == "*" || value == offer) && (q > bestQ || q == bestQ && i < bestAt) {
					best, bestQ, bestAt = offer, q, i
				}
			}
		}
	}
	if bestQ == 0 {
		return ""
	}
	return best
}

// quality reads a q value as promhttp's parser does: 0 or 1, then maybe a
// dot and digits; -1 when it cannot.
func quality(s string) float64 {
	if s == "" || s[0] != '0' && s[0] != '1' {
		return -1
	}
	q := float64(s[0] - '0')
	if rest, ok := strings.CutPrefix(s[1:], "."); ok {
		n, d := 0.0, 1.0
		for _, c := range rest {
			if c < '0' || c > '9' {
				break
			}
			n, d = n*10+float64(c-'0'), d*10
		}
		q += n / d
	}
	return q
}
