// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// FaultKind is what a Fault does to the answer.
type FaultKind string

// The kinds of faults.
const (
	// FaultStatus answers Status with the documented error body for it:
	// 429 APIG.0308 "The throttling threshold has been reached", 401
	// ModelArts.0203, 403 ModelArts.0210, 404 ModelArts.6404, 500 ModelArts.0001,
	// 502/503 APIG.0202, 504 APIG.0203; IAM operations get IAM's body
	// ({"error":{...}}) except for gateway errors; metadata operations get
	// the status text as plain text (e.g. 503 on OpSecurityKey: the service
	// is down; 401 with ErrorMsg MsgNoAgency: no agency). ErrorCode overrides the
	// code, with the message the error code table documents for that status
	// and code (e.g. 403 ModelArts.0112, 0108, 5014, 0203, 0206, 2784; 429
	// ModelArts.4206); ErrorMsg overrides the message.
	FaultStatus FaultKind = "status"
	// FaultRaw answers Status (default 200) with Body as ContentType (default
	// text/html), e.g. a 502 page from a gateway. An empty Body gets a
	// gateway-like HTML page.
	FaultRaw FaultKind = "raw"
	// FaultDelay waits Delay, then gives the normal answer. If the client gives
	// up first, the handler ends without answering.
	FaultDelay FaultKind = "delay"
	// FaultMalformedJSON sends the normal status with a body that is not JSON.
	FaultMalformedJSON FaultKind = "malformed_json"
	// FaultTruncatedJSON announces the normal body's length, sends its first
	// half and closes the connection.
	FaultTruncatedJSON FaultKind = "truncated_json"
	// FaultReset sends the headers and half the body, then resets the TCP
	// connection (RST).
	FaultReset FaultKind = "reset"
	// FaultOversized sends a valid JSON body of exactly Size bytes: the normal
	// one with a long "x_padding" string added.
	FaultOversized FaultKind = "oversized"
	// FaultWrongTypes sends the images' size as a JSON string ("size":"123").
	FaultWrongTypes FaultKind = "wrong_types"
	// FaultUnknownFields adds fields the documentation does not list
	// (flavor_type, swr_instance_id, show_name, tags, nested objects) to the
	// images and to the list.
	FaultUnknownFields FaultKind = "unknown_fields"
	// FaultUnknownStatus sends Value (default "FROZEN") as the images' status.
	FaultUnknownStatus FaultKind = "unknown_status"
	// FaultOtherImage answers 200 with another image in place of the image:
	// another stored image's record if there is one, else the same record
	// with a different id.
	FaultOtherImage FaultKind = "other_image"
	// FaultEmptyObject answers 200 with {} in place of the image.
	FaultEmptyObject FaultKind = "empty_object"
	// FaultNegativeSize sends the images' size as -5.
	FaultNegativeSize FaultKind = "negative_size"
)

var faultKinds = []FaultKind{
	FaultStatus, FaultRaw, FaultDelay, FaultMalformedJSON, FaultTruncatedJSON, FaultReset,
	FaultOversized, FaultWrongTypes, FaultUnknownFields, FaultUnknownStatus,
	FaultOtherImage, FaultEmptyObject, FaultNegativeSize,
}

// Fault makes matching API calls misbehave. A call matches when its operation
// is Operation (empty: ShowImage or ListImage) and, if ImageID is set, the
// call is about that image: a ShowImage for that id, or a ListImage whose
// page holds it (the kinds that alter images then alter that element only). Faults
// apply after authentication, so refused credentials are refused as usual.
// The first matching fault, in the order they were added, wins.
//
// In JSON (admin API) the fields are snake_case and Delay is a Go duration
// string such as "1.5s".
type Fault struct {
	Kind FaultKind `json:"kind"`
	// Operation is OpShowImage, OpListImage, OpCreateToken, OpListProjects,
	// OpMetadataToken, OpSecurityKey or empty for both ModelArts operations.
	Operation string `json:"operation,omitempty"`
	// ImageID restricts the fault to calls about one image.
	ImageID string `json:"image_id,omitempty"`
	// Count is how many calls the fault affects before it removes itself;
	// 0 means until removed.
	Count int `json:"count,omitempty"`

	// Status is the HTTP status of FaultStatus and FaultRaw.
	Status int `json:"status,omitempty"`
	// ErrorCode and ErrorMsg override FaultStatus's documented body.
	ErrorCode string `json:"error_code,omitempty"`
	ErrorMsg  string `json:"error_msg,omitempty"`
	// ContentType and Body are FaultRaw's answer.
	ContentType string `json:"content_type,omitempty"`
	Body        string `json:"body,omitempty"`
	// Headers are added to the answer, e.g. {"Retry-After": "3"}.
	Headers map[string]string `json:"headers,omitempty"`
	// Delay is waited before the answer, for any kind (FaultDelay requires it).
	Delay time.Duration `json:"-"`
	// Size is FaultOversized's body size in bytes.
	Size int `json:"size,omitempty"`
	// Value is FaultUnknownStatus's status; default "FROZEN".
	Value string `json:"value,omitempty"`
}

// faultJSON is Fault with Delay as a duration string.
type faultJSON struct {
	faultAlias
	Delay string `json:"delay,omitempty"`
}

type faultAlias Fault

// MarshalJSON writes Delay as a duration string.
func (f Fault) MarshalJSON() ([]byte, error) {
	j := faultJSON{faultAlias: faultAlias(f)}
	if f.Delay != 0 {
		j.Delay = f.Delay.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads Delay as a duration string.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = Fault(j.faultAlias)
	if j.Delay != "" {
		d, err := time.ParseDuration(j.Delay)
		if err != nil {
			return fmt.Errorf("delay: %w", err)
		}
		f.Delay = d
	}
	return nil
}

// Validate reports a fault that cannot work.
func (f Fault) Validate() error {
	if !slices.Contains(faultKinds, f.Kind) {
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	switch f.Operation {
	case "", OpShowImage, OpListImage:
	case OpCreateToken, OpListProjects, OpMetadataToken, OpSecurityKey:
		if f.ImageID != "" {
			return errors.New("image_id only applies to ShowImage and ListImage")
		}
		if f.altersImages() {
			return fmt.Errorf("fault kind %q only applies to ShowImage and ListImage", f.Kind)
		}
	default:
		return fmt.Errorf("unknown operation %q", f.Operation)
	}
	return f.validateParameters()
}

func (f Fault) validateParameters() error {
	switch {
	case f.Count < 0:
		return errors.New("count must not be negative")
	case f.Delay < 0:
		return errors.New("delay must not be negative")
	case f.Kind == FaultStatus && (f.Status < 400 || f.Status > 599):
		return errors.New("a status fault needs a status between 400 and 599")
	case f.Kind == FaultRaw && f.Status != 0 && (f.Status < 200 || f.Status > 599):
		return errors.New("a raw fault's status must be between 200 and 599")
	case f.Kind == FaultDelay && f.Delay == 0:
		return errors.New("a delay fault needs a delay")
	case f.Kind == FaultOversized && f.Size <= 0:
		return errors.New("an oversized fault needs a size")
	}
	return nil
}

// altersImages tells the kinds that change the images of a 200 answer.
func (f Fault) altersImages() bool {
	switch f.Kind {
	case FaultWrongTypes, FaultUnknownFields, FaultUnknownStatus, FaultOtherImage, FaultEmptyObject, FaultNegativeSize:
		return true
	}
	return false
}

func (f Fault) matches(op string, imageIDs []string) bool {
	switch {
	case f.Operation == "" && op != OpShowImage && op != OpListImage:
		return false
	case f.Operation != "" && f.Operation != op:
		return false
	}
	return f.ImageID == "" || slices.Contains(imageIDs, f.ImageID)
}

// activeFault is a fault with its id and remaining count.
type activeFault struct {
	ID        int
	Fault     Fault
	Remaining int // 0: until removed
}

type faultSet struct {
	mu     sync.Mutex
	nextID int
	list   []*activeFault
}

func newFaultSet() *faultSet { return &faultSet{} }

func (fs *faultSet) add(f Fault) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.nextID++
	fs.list = append(fs.list, &activeFault{ID: fs.nextID, Fault: f, Remaining: f.Count})
	return fs.nextID
}

func (fs *faultSet) remove(id int) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := len(fs.list)
	fs.list = slices.DeleteFunc(fs.list, func(a *activeFault) bool { return a.ID == id })
	return len(fs.list) < n
}

func (fs *faultSet) clear() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.list = nil
}

// take returns the first fault matching the call and uses it up once.
func (fs *faultSet) take(op string, imageIDs []string) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, a := range fs.list {
		if !a.Fault.matches(op, imageIDs) {
			continue
		}
		if a.Remaining > 0 {
			a.Remaining--
			if a.Remaining == 0 {
				fs.list = slices.Delete(fs.list, i, i+1)
			}
		}
		return a.Fault, true
	}
	return Fault{}, false
}

// AddFault makes matching calls misbehave until remove is called or, with a
// Count, until Count calls were affected. It panics if the fault is invalid
// (see Fault.Validate): that is a mistake in the test.
func (s *Server) AddFault(f Fault) (remove func()) {
	if err := f.Validate(); err != nil {
		panic("modelartstest: AddFault: " + err.Error())
	}
	id := s.faults.add(f)
	return func() { s.faults.remove(id) }
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.faults.clear() }
