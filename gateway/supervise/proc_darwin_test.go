package supervise

import (
	"errors"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// procWatch follows a process that is not the test's child through a kqueue
// NOTE_EXIT registration made while the process surely runs (macOS has no
// pidfd).
type procWatch struct {
	pid, kq int
}

// watchProc registers for the exit of a live process; the kqueue is closed at
// the end of the test.
func watchProc(t *testing.T, pid int) procWatch {
	t.Helper()
	kq, err := unix.Kqueue()
	if err != nil {
		t.Fatalf("kqueue: %v", err)
	}
	t.Cleanup(func() { unix.Close(kq) })
	var ev unix.Kevent_t
	unix.SetKevent(&ev, pid, unix.EVFILT_PROC, unix.EV_ADD|unix.EV_ONESHOT)
	ev.Fflags = unix.NOTE_EXIT
	if _, err := unix.Kevent(kq, []unix.Kevent_t{ev}, nil, nil); err != nil {
		t.Fatalf("kevent(NOTE_EXIT, %d): %v", pid, err)
	}
	return procWatch{pid: pid, kq: kq}
}

// awaitGone waits until the process has exited, and checks that kill(pid, 0)
// no longer finds a live process.
func (w procWatch) awaitGone(t *testing.T) {
	t.Helper()
	events := make([]unix.Kevent_t, 1)
	timeout := unix.NsecToTimespec(10e9)
	for {
		n, err := unix.Kevent(w.kq, nil, events, &timeout)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			t.Fatalf("process %d still running 10s after Run returned (kevent: %v)", w.pid, err)
		}
		break
	}
	// An orphan is reaped by launchd, not by us: until then it is a zombie,
	// which has exited but still answers kill(pid, 0).
	if err := syscall.Kill(w.pid, 0); !errors.Is(err, syscall.ESRCH) && !zombie(w.pid) {
		t.Errorf("kill(%d, 0): got %v, want ESRCH or a zombie", w.pid, err)
	}
}

// kill sends SIGKILL to the process unless it has exited.
func (w procWatch) kill() {
	events := make([]unix.Kevent_t, 1)
	var zero unix.Timespec
	if n, _ := unix.Kevent(w.kq, nil, events, &zero); n == 0 {
		_ = syscall.Kill(w.pid, syscall.SIGKILL)
	}
}

// zombie reports whether pid is a zombie (kern.proc.pid's p_stat is SZOMB).
func zombie(pid int) bool {
	const szomb = 5 // <sys/proc.h>
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	return err == nil && kp.Proc.P_stat == szomb
}
