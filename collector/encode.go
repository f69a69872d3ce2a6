// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package collector

import (
	"bytes"
	"io"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// textPartImages is how many images' series are built at once for the text
// formats: the storage of about 10,000 series, reused part after part.
const textPartImages = 1024

// Encoder writes metric families in one exposition format, whole or in the
// parts an Emit receives.
type Encoder struct {
	w      io.Writer
	format expfmt.Format
	enc    expfmt.Encoder
}

// NewEncoder returns an Encoder writing to w in format.
func NewEncoder(w io.Writer, format expfmt.Format) *Encoder {
	return &Encoder{w: w, format: format, enc: expfmt.NewEncoder(w, format)}
}

// PartImages is the partImages to emit with: parts for the text formats, whole
// families for the protobuf ones, where a family is one message.
func (e *Encoder) PartImages() int {
	if t := e.format.FormatType(); t == expfmt.TypeTextPlain || t == expfmt.TypeOpenMetrics {
		return textPartImages
	}
	return 0
}

// Emit encodes mf; a continued part without the header of its family.
func (e *Encoder) Emit(mf *dto.MetricFamily, continued bool) error {
	if !continued {
		return e.enc.Encode(mf)
	}
	return expfmt.NewEncoder(&headerSkipper{w: e.w}, e.format).Encode(mf)
}

// Close ends the format (OpenMetrics' # EOF).
func (e *Encoder) Close() error {
	if closer, ok := e.enc.(expfmt.Closer); ok {
		return closer.Close()
	}
	return nil
}

// headerSkipper writes to w what follows the leading comment lines (# HELP,
// # TYPE) written to it; a series line never starts with #.
type headerSkipper struct {
	w                io.Writer
	inComment, begun bool
}

func (s *headerSkipper) Write(p []byte) (int, error) {
	n := len(p)
	for !s.begun && len(p) > 0 && (s.inComment || p[0] == '#') {
		i := bytes.IndexByte(p, '\n')
		if s.inComment = i < 0; s.inComment {
			return n, nil
		}
		p = p[i+1:]
	}
	if s.begun = s.begun || len(p) > 0; s.begun {
		if _, err := s.w.Write(p); err != nil {
			return 0, err
		}
	}
	return n, nil
}
