package benchutil

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"
)

// ResetPeakRSS lowers this process's peak RSS to its current RSS and
// returns that (0 where /proc does not tell). A child's peak RSS as wait4
// reports it (ru_maxrss) is never below the peak RSS of the process that
// started it: os/exec starts children with vfork (CLONE_VM), and exec
// records the peak of the memory map the child leaves, which is the
// parent's. So whoever measures a child's memory returns freed memory to
// the system and resets its own peak (clear_refs 5, Linux 4.0 and later)
// before starting it; else the parent's own work shows in the child's
// figure.
func ResetPeakRSS() int64 {
	debug.FreeOSMemory()
	if f, err := os.OpenFile("/proc/self/clear_refs", os.O_WRONLY, 0); err == nil {
		_, _ = f.Write([]byte("5"))
		_ = f.Close()
	}
	var kib int64
	if n, err := fmt.Sscan(ProcField("/proc/self/status", "VmHWM"), &kib); err != nil || n != 1 {
		return 0
	}
	return kib << 10
}

// ProcField returns the value of the first "key: value" line of file (a
// /proc file), or "unknown".
func ProcField(file, key string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
