// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelarts

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fastRetry is defaultRetryPolicy scaled down for tests.
var fastRetry = retryPolicy{maxRetries: 2, minBackoff: 20 * time.Millisecond, maxBackoff: 40 * time.Millisecond, attemptTime: 10 * time.Millisecond}

// throttlingServer answers 429 to the first `throttled` calls, then 200 (or
// status, when set, to every call).
func throttlingServer(t *testing.T, throttled int32, status int, mutate func(*Config)) (*Client, *atomic.Int32, *recordingObserver) {
	t.Helper()
	var calls atomic.Int32
	obs := &recordingObserver{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch {
		case status != 0:
			writeJSON(w, status, `{"error_code":"APIG.0301","error_msg":"Incorrect IAM authentication information"}`)
		case n <= throttled:
			writeJSON(w, http.StatusTooManyRequests, `{"error_code":"APIG.0308","error_msg":"The throttling threshold has been reached"}`)
		default:
			writeJSON(w, http.StatusOK, showImageExample)
		}
	})
	c, _ := newAKSKClient(t, handler, func(cfg *Config) {
		cfg.Observer = obs
		cfg.retry = &fastRetry
		if mutate != nil {
			mutate(cfg)
		}
	})
	return c, &calls, obs
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestRetryOnThrottling(t *testing.T) {
	tests := []struct {
		name      string
		throttled int32
		status    int
		ctx       func(t *testing.T) context.Context
		wantCalls int32
		wantErr   error
	}{
		{
			name: "429 then 200: retried", throttled: 1,
			ctx: func(t *testing.T) context.Context { return withTimeout(t, 10*time.Second) }, wantCalls: 2,
		},
		{
			name: "429 every time: MaxRetries retries", throttled: 100,
			ctx:       func(t *testing.T) context.Context { return withTimeout(t, 10*time.Second) },
			wantCalls: 3, wantErr: ErrThrottled,
		},
		{
			name: "no deadline: no retry", throttled: 1,
			ctx:       func(*testing.T) context.Context { return context.Background() },
			wantCalls: 1, wantErr: ErrThrottled,
		},
		{
			name: "too little time left for the backoff: no retry", throttled: 1,
			ctx:       func(t *testing.T) context.Context { return withTimeout(t, 25*time.Millisecond) },
			wantCalls: 1, wantErr: ErrThrottled,
		},
		{
			name: "401 never retried", status: http.StatusUnauthorized,
			ctx:       func(t *testing.T) context.Context { return withTimeout(t, 10*time.Second) },
			wantCalls: 1, wantErr: ErrUnauthorized,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, calls, obs := throttlingServer(t, tt.throttled, tt.status, nil)
			_, err := c.ShowImage(tt.ctx(t), testImageID)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("%d calls, want %d", got, tt.wantCalls)
			}
			if got := len(obs.observations()); got != int(tt.wantCalls) {
				t.Errorf("the observer saw %d attempts, want %d", got, tt.wantCalls)
			}
		})
	}
}

// TestRetryBackoffEndsWithTheContext: a cancelled caller is not kept waiting.
func TestRetryBackoffEndsWithTheContext(t *testing.T) {
	slow := retryPolicy{maxRetries: 1, minBackoff: time.Minute, maxBackoff: time.Minute}
	c, calls, _ := throttlingServer(t, 100, 0, func(cfg *Config) { cfg.retry = &slow })
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.ShowImage(ctx, testImageID)
	if !errors.Is(err, ErrThrottled) || time.Since(start) > 10*time.Second || calls.Load() != 1 {
		t.Errorf("err = %v after %v and %d calls; want the 429 soon after the cancellation, 1 call", err, time.Since(start), calls.Load())
	}
}

func TestBackoffStaysInsideTheDeadline(t *testing.T) {
	p := defaultRetryPolicy
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name     string
		left     time.Duration
		retries  int
		wantOK   bool
		min, max time.Duration
	}{
		{"plenty of time", time.Minute, 0, true, 2 * time.Second, 5 * time.Second},
		{"the wait is shortened to fit", 4 * time.Second, 0, true, 2 * time.Second, 3 * time.Second},
		{"not even the shortest wait fits", 2900 * time.Millisecond, 0, false, 0, 0},
		{"retries used up", time.Minute, 2, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithDeadline(context.Background(), now.Add(tt.left))
			defer cancel()
			for range 100 {
				wait, ok := p.backoff(ctx, tt.retries, now)
				if ok != tt.wantOK || wait < tt.min || wait > tt.max {
					t.Fatalf("backoff = %v, %v; want %v within [%v, %v]", wait, ok, tt.wantOK, tt.min, tt.max)
				}
			}
		})
	}
}

// TestRateLimit: a request whose turn would come after the deadline fails
// at once, without reaching the server, as one that gave no answer.
func TestRateLimit(t *testing.T) {
	c, calls, _ := throttlingServer(t, 0, 0, func(cfg *Config) { cfg.RateLimit, cfg.RateBurst = 0.5, 1 })
	ctx := withTimeout(t, time.Second)
	if _, err := c.ShowImage(ctx, testImageID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := c.ShowImage(ctx, testImageID)
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want unreachable and the deadline", err)
	}
	if calls.Load() != 1 || time.Since(start) > 500*time.Millisecond {
		t.Errorf("%d calls, waited %v; want 1 call and no wait", calls.Load(), time.Since(start))
	}
}

// panickyOut panics while it is decoded, as a bug in handling some odd answer would.
type panickyOut struct{}

func (*panickyOut) UnmarshalJSON([]byte) error { panic("odd answer") }

// TestPanicWhileHandlingAnAnswerFailsTheCall: a panic while an answer is
// handled becomes that call's error, instead of ending the process.
func TestPanicWhileHandlingAnAnswerFailsTheCall(t *testing.T) {
	c, _ := newAKSKClient(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, `{"id":"x"}`)
	}), nil)
	_, err := c.do(context.Background(), OpShowImage, "images/x", 0, &panickyOut{})
	if !errors.Is(err, ErrMalformedResponse) || !strings.Contains(err.Error(), "odd answer") {
		t.Fatalf("err = %v, want a malformed response naming the panic", err)
	}
}
