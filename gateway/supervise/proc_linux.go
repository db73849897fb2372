package supervise

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// childAttr starts the child in a process group of its own, with a
// parent-death signal.
//
// Pdeathsig: if the gateway dies without stopping the child (SIGKILL, crash),
// the kernel kills the child instead of leaving it holding the port. Caveat:
// Linux sends this signal when the *thread* that forked the child exits, not
// the process. The Go runtime never ends its threads, except when a goroutine
// locked with runtime.LockOSThread returns without unlocking: so Start must
// not run on such a goroutine, or the child would be killed when it returns.
// Also, the setting is not inherited by grandchildren.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// awaitExit blocks until the child pid has exited and leaves it unreaped
// (waitid with WNOWAIT), so that its PID and group ID stay ours until
// exec.Cmd.Wait reaps it.
func awaitExit(pid int) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
