package supervise

import (
	"errors"
	"syscall"
	"testing"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// procWatch follows a process that is not the test's child through a pidfd,
// opened while the process surely runs, so that a reused PID cannot fool it.
type procWatch struct {
	pid, fd int
}

// watchProc opens a pidfd for a live process; it is closed at the end of the test.
func watchProc(t *testing.T, pid int) procWatch {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd_open(%d): %v", pid, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return procWatch{pid: pid, fd: fd}
}

// awaitGone waits until the process has exited, and checks that kill(pid, 0)
// no longer finds a live process.
func (w procWatch) awaitGone(t *testing.T) {
	t.Helper()
	// A pidfd becomes readable when the process exits, whoever reaps it.
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 10_000)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			t.Fatalf("process %d still running 10s after Run returned (poll: %v)", w.pid, err)
		}
		break
	}
	// An orphan is reaped by init, not by us: until then it is a zombie,
	// which has exited but still answers kill(pid, 0).
	if err := syscall.Kill(w.pid, 0); !errors.Is(err, syscall.ESRCH) && procState(w.pid) != "Z" {
		t.Errorf("kill(%d, 0): got %v (state %q), want ESRCH or a zombie", w.pid, err, procState(w.pid))
	}
}

// kill sends SIGKILL through the pidfd (never to a reused PID).
func (w procWatch) kill() { _ = unix.PidfdSendSignal(w.fd, unix.SIGKILL, nil, 0) }

// procState returns the process's state letter (proc(5)), or "" if it is gone.
func procState(pid int) string {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return ""
	}
	st, err := p.Stat()
	if err != nil {
		return ""
	}
	return st.State
}
