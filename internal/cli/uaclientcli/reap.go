package uaclientcli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// reapStray stops every other process in this container but the phone
// daemon (PID 1, or any `uaclient run`): what an intern left running with
// `docker exec alice /uaclient call bob -timeout 10m` would otherwise keep
// acting on the phone after a reset. It returns their command lines.
// A container has its own PID namespace, so /proc lists only its processes.
func reapStray(procDir string) []string {
	self := os.Getpid()
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return nil
	}
	var pids []int
	var cmds []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 || pid == self {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(procDir, e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue // a kernel thread or already gone
		}
		argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if len(argv) > 1 && argv[1] == "run" {
			continue // a daemon, not a stray client
		}
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			continue
		}
		pids = append(pids, pid)
		cmds = append(cmds, string(bytes.Join(bytes.Split(bytes.TrimRight(raw, "\x00"), []byte{0}), []byte(" "))))
	}
	// Clients die on SIGTERM at once (no handler); make sure.
	deadline := time.Now().Add(time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return cmds
}
