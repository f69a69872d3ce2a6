// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// proc is a program the checker started; its output goes to <tmp>/<name>.log.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// start runs a program in its own process group. Pdeathsig kills it should
// the checker itself die without running its cleanup (SIGKILL).
func start(dir, name string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, and SIGKILL when it has not
// ended after grace.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitHealthy polls url until it answers 200, the process exits or ctx ends.
func (p *proc) waitHealthy(ctx context.Context, url string) error {
	return poll(ctx, p.name+" ready at "+url, 30*time.Second, func() error {
		if p.exited() {
			return stopPolling(fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail(20)))
		}
		return httpGetOK(ctx, url)
	})
}

func httpGetOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// freeAddrs returns n distinct loopback addresses with ports that were free a
// moment ago. Prometheus and Alertmanager cannot report a port chosen with
// ":0", so the ports are picked here; all listeners are held until every port
// is picked so that the ports differ.
func freeAddrs(n int) ([]string, error) {
	var (
		addrs     []string
		listeners []net.Listener
	)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// errStop wraps an error that ends a poll at once.
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }

func stopPolling(err error) error { return errStop{err} }

// poll calls f every 200ms until it returns nil, returns an error made with
// stopPolling, the timeout passes or ctx ends. The error names what was
// awaited and f's last complaint.
func poll(parent context.Context, what string, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		last = f()
		if last == nil {
			return nil
		}
		var stop errStop
		if errors.As(last, &stop) {
			return fmt.Errorf("%s: %w", what, stop.err)
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return fmt.Errorf("%s: interrupted (%v); last: %w", what, context.Cause(parent), last)
			}
			return fmt.Errorf("%s: not within %s: %w", what, timeout, last)
		case <-tick.C:
		}
	}
}

// run runs a command to its end and returns its combined output.
func run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
