package supervise

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// childAttr starts the child in a process group of its own. macOS has no
// parent-death signal: a child outlives a gateway killed with SIGKILL (a
// SIGTERM or Ctrl-C still stops its whole group).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// awaitExit blocks until the child pid has exited and leaves it unreaped, as
// waitid's WNOWAIT does on Linux (which macOS's waitid does not offer to Go):
// a kqueue EVFILT_PROC/NOTE_EXIT event fires when the process exits, before
// anyone reaps it, so its PID and group ID stay ours until exec.Cmd.Wait.
//
// Tested only by compiling (make check-platforms); the tests run on Linux.
func awaitExit(pid int) error {
	kq, err := unix.Kqueue()
	if err != nil {
		return fmt.Errorf("kqueue: %w", err)
	}
	defer unix.Close(kq)
	var change unix.Kevent_t
	unix.SetKevent(&change, pid, unix.EVFILT_PROC, unix.EV_ADD|unix.EV_ONESHOT)
	change.Fflags = unix.NOTE_EXIT
	for {
		_, err = unix.Kevent(kq, []unix.Kevent_t{change}, nil, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if errors.Is(err, unix.ESRCH) {
		// Our own child, not reaped yet: ESRCH means it has already exited.
		return nil
	}
	if err != nil {
		return fmt.Errorf("kevent: %w", err)
	}
	events := make([]unix.Kevent_t, 1)
	for {
		n, err := unix.Kevent(kq, nil, events, nil)
		if errors.Is(err, unix.EINTR) || (err == nil && n == 0) {
			continue
		}
		return err
	}
}
