package benchutil

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Settle prepares the machine for a timed command: it flushes dirty pages
// (sync(2)), so that no command pays for writes an earlier one left in
// the page cache, and then hands warm bytes of memory through this
// process (WarmMemory). The page cache itself is kept.
func Settle(warm int64) error {
	syscall.Sync()
	return WarmMemory(warm)
}

// warmReserve is the free memory WarmMemory leaves alone, so that it
// never pushes the page cache (DATA_DIR, read warm) out.
const warmReserve = 1 << 30

// WarmMemory maps n bytes of anonymous memory, has the kernel fault all
// of it in, and unmaps it, taking at most what is free beyond
// warmReserve.
//
// On a VM whose kernel reports free pages to the host (Firecracker with
// page_reporting, as on the machines this suite runs on), memory that
// stayed free for a couple of seconds is given back, and the first write
// to each page afterwards costs the host a fault: 0.6 s per GiB, more
// than cp -a spends copying 1 GiB. Which command met such pages depended
// on what the previous one freed, and made cp -a take 0.33-2.56 s on the
// same tree. Faulting the memory in just before a command gives it, and
// every baseline alike, pages the host backs: cp -a of 1 GiB then takes
// 0.38 s where it took 1.5-1.9 s. On a machine without page reporting
// this only costs the time to zero the pages.
func WarmMemory(n int64) error {
	n = warmSize(n, freeMemory())
	if n <= 0 {
		return nil
	}
	b, err := unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("warm %d bytes of memory: %w", n, err)
	}
	return unix.Munmap(b)
}

// warmSize is how much of n WarmMemory takes when free bytes are free.
func warmSize(n, free int64) int64 { return max(0, min(n, free-warmReserve)) }

// freeMemory is MemFree of /proc/meminfo in bytes; 0 when unknown.
func freeMemory() int64 {
	var kib int64
	if n, err := fmt.Sscanf(ProcField("/proc/meminfo", "MemFree"), "%d kB", &kib); err != nil || n != 1 {
		return 0
	}
	return kib << 10
}
