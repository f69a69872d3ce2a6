// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

//go:build e2e || load

// Package procs runs the programs that the e2e and load tests start: each on
// a free loopback port of its own, in its own process group, with its output
// in a log file. A program is stopped when the test that started it ends, and
// killed by the kernel should the test binary die first (Pdeathsig).
package procs

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Proc is a started program.
type Proc struct {
	Name string
	Log  string // the file that holds its stdout and stderr
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
	err  error         // what Wait returned, once done is closed
}

// Start runs args[0] with args[1:], its output in dir/name.log. It is stopped
// when t ends; when t failed, the last lines of its log are logged.
func Start(t testing.TB, dir, name string, args ...string) *Proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Proc{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("last lines of %s:\n%s", p.Log, p.Tail(15))
		}
	})
	return p
}

// Exited reports whether the program has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the program's process group, and SIGKILL when it has
// not ended 5s later. It returns once the program has ended.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Tail returns the last n lines of the program's log.
func (p *Proc) Tail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// WaitReady polls url until it answers 200. It fails when the program exits
// first or 30s pass, with the program's last words.
func (p *Proc) WaitReady(url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		switch {
		case p.Exited():
			return fmt.Errorf("%s exited before it was ready at %s: %v\n%s", p.Name, url, p.err, p.Tail(20))
		case time.Now().After(deadline):
			return fmt.Errorf("%s not ready at %s within 30s: %v\n%s", p.Name, url, err, p.Tail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FreeAddrs returns n distinct loopback addresses whose ports were free a
// moment ago. Prometheus and Alertmanager cannot report a port chosen with
// ":0", so the ports are picked here; every listener is held until all are
// picked, so that the ports differ.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = l.Close() }()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}
