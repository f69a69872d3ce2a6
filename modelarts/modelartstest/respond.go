// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// resetGrace lets the client read the headers and the first part of the body
// before the connection is reset.
const resetGrace = 50 * time.Millisecond

// respond writes rp, or what the first matching fault makes of it.
func (s *Server) respond(w *statusRecorder, c *call, rp reply) {
	f, ok := s.faults.take(c.op, rp.imageIDs)
	if !ok {
		writeReply(w, rp)
		return
	}
	if !s.wait(c.r.Context(), f.Delay) {
		return
	}
	for k, v := range f.Headers {
		w.Header().Set(k, v)
	}
	switch f.Kind {
	case FaultStatus:
		writeReply(w, statusFaultReply(c, f))
	case FaultRaw:
		writeReply(w, rawFaultReply(f))
	case FaultMalformedJSON:
		rp.body = malformJSON(rp.body)
		writeReply(w, rp)
	case FaultTruncatedJSON:
		s.cutConnection(w, c, rp, false)
	case FaultReset:
		s.cutConnection(w, c, rp, true)
	case FaultOversized:
		writeOversized(w, rp, f.Size)
	case FaultWrongTypes, FaultUnknownFields, FaultUnknownStatus, FaultOtherImage, FaultEmptyObject, FaultNegativeSize:
		writeReply(w, s.alterImages(c.op, rp, f))
	default: // FaultDelay: the delay was the fault
		writeReply(w, rp)
	}
}

func statusFaultReply(c *call, f Fault) reply {
	code, msg := documentedError(c.op, f.Status)
	if f.ErrorCode != "" {
		code = f.ErrorCode
		msg = cmp.Or(docMessage(f.Status, code, c.op), msg)
	}
	return errorReply(c, f.Status, code, cmp.Or(f.ErrorMsg, msg))
}

func rawFaultReply(f Fault) reply {
	status := cmp.Or(f.Status, http.StatusOK)
	body := f.Body
	if body == "" {
		body = gatewayPage(status)
	}
	return reply{status: status, contentType: cmp.Or(f.ContentType, "text/html"), body: []byte(body)}
}

// gatewayPage is the kind of page a reverse proxy answers with.
func gatewayPage(status int) string {
	title := fmt.Sprintf("%d %s", status, http.StatusText(status))
	return "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title +
		"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
}

// malformJSON turns a JSON object into something no JSON parser accepts.
func malformJSON(body []byte) []byte {
	if n := len(body); n > 0 && body[n-1] == '}' {
		return append(bytes.Clone(body[:n-1]), `,"status":ACTIVE}`...)
	}
	return append(bytes.Clone(body), "}{"...)
}

// cutConnection hijacks the connection, writes the status line, the headers
// (with the full Content-Length) and half the body, then closes the connection
// or, with reset, resets it.
func (s *Server) cutConnection(w *statusRecorder, c *call, rp reply, reset bool) {
	conn, _, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil { // HTTP/2: abort the stream instead
		panic(http.ErrAbortHandler)
	}
	defer func() { _ = conn.Close() }() // with reset, Close sends the RST; nothing to do if it fails
	w.setStatus(rp.status)

	h := w.Header().Clone()
	for k, v := range rp.header {
		h[k] = v
	}
	h.Set("Content-Type", rp.contentType)
	h.Set("Content-Length", strconv.Itoa(len(rp.body)))
	h.Set("Connection", "close")
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "HTTP/1.1 %d %s\r\n", rp.status, http.StatusText(rp.status))
	_ = h.Write(&buf) // a bytes.Buffer does not fail
	buf.WriteString("\r\n")
	buf.Write(rp.body[:len(rp.body)/2])
	if _, err := conn.Write(buf.Bytes()); err != nil || !reset {
		return
	}
	s.wait(c.r.Context(), resetGrace)
	resetConn(conn)
}

// resetConn makes Close send a TCP RST instead of a FIN.
func resetConn(conn net.Conn) {
	if nc, ok := conn.(interface{ NetConn() net.Conn }); ok { // TLS
		conn = nc.NetConn()
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
}

// writeOversized sends size bytes: rp's JSON object with an "x_padding"
// string in front, streamed so that the size costs no memory.
func writeOversized(w http.ResponseWriter, rp reply, size int) {
	head := []byte(`{"x_padding":"`)
	tail := []byte(`"}`)
	if len(rp.body) > 2 && rp.body[0] == '{' {
		tail = append([]byte(`",`), rp.body[1:]...)
	}
	padding := max(size-len(head)-len(tail), 0)
	w.Header().Set("Content-Type", contentTypeJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(head)+padding+len(tail)))
	w.WriteHeader(rp.status)
	if _, err := w.Write(head); err != nil {
		return
	}
	chunk := bytes.Repeat([]byte{'a'}, 32<<10)
	for padding > 0 {
		n := min(padding, len(chunk))
		if _, err := w.Write(chunk[:n]); err != nil {
			return // the client gave up, as it should
		}
		padding -= n
	}
	_, _ = w.Write(tail)
}

// alterImages changes the images in a ShowImage or ListImage answer.
func (s *Server) alterImages(op string, rp reply, f Fault) reply {
	if rp.status != http.StatusOK {
		return rp
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(rp.body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return rp
	}
	switch op {
	case OpShowImage:
		rp.body = mustJSON(s.alterImage(doc, f))
		return rp
	case OpListImage:
		items, _ := doc["data"].([]any)
		for i, item := range items {
			if img, ok := item.(map[string]any); ok {
				items[i] = s.alterImage(img, f)
			}
		}
		if f.Kind == FaultUnknownFields {
			doc["x_sim_cursor"] = map[string]any{"next": nil, "hint": []any{1, "two", 3.5}}
		}
	}
	rp.body = mustJSON(doc)
	return rp
}

// alterImage returns what img becomes: img changed in place, or another value.
func (s *Server) alterImage(img map[string]any, f Fault) any {
	id, _ := img["id"].(string)
	if f.ImageID != "" && id != f.ImageID {
		return img
	}
	switch f.Kind {
	case FaultWrongTypes:
		size := "123"
		if n, ok := img["size"].(json.Number); ok {
			size = n.String()
		}
		img["size"] = size
	case FaultUnknownFields:
		img["flavor_type"] = "modelarts.vm.cpu.2u"
		img["swr_instance_id"] = "swr-instance-0001"
		img["show_name"] = img["name"]
		img["show_tag"] = img["tag"]
		img["tags"] = []any{map[string]any{"key": "team", "value": "simulator"}}
		img["x_sim_extra"] = map[string]any{"nested": []any{1, 2, 3}, "nothing": nil}
	case FaultUnknownStatus:
		img["status"] = cmp.Or(f.Value, "FROZEN")
	case FaultNegativeSize:
		img["size"] = -5
	case FaultEmptyObject:
		return map[string]any{}
	case FaultOtherImage:
		if other, ok := s.otherImage(id); ok {
			return toWire(other)
		}
		img["id"] = derivedID(id)
	}
	return img
}

// otherImage is the first stored image in the default ListImage order whose
// id is not id.
func (s *Server) otherImage(id string) (modelarts.Image, bool) {
	for img := range inOrder(s.images.sortedBy(defaultSortKey), true) {
		if img.ID != id {
			return *img, true
		}
	}
	return modelarts.Image{}, false
}

// derivedID is a UUID-shaped id that differs from id, the same for the same id.
func derivedID(id string) string {
	h := hexSHA256([]byte("other:" + id))
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:32]
}
