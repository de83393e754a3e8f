package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat; it
// is 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// cpuTime is CPU time in user space and in the kernel.
type cpuTime struct{ user, sys time.Duration }

func (c cpuTime) total() time.Duration { return c.user + c.sys }

func (c cpuTime) sub(o cpuTime) cpuTime { return cpuTime{c.user - o.user, c.sys - o.sys} }

// groupCPU is the CPU time used so far by every live process in process
// group pgid (nginx's master and workers, or one sspemu), read from /proc.
func groupCPU(pgid int) cpuTime {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return cpuTime{}
	}
	var total cpuTime
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		group, cpu, ok := procCPU(pid)
		if ok && group == pgid {
			total.user += cpu.user
			total.sys += cpu.sys
		}
	}
	return total
}

// selfCPU is the CPU time of this process: the load generator and the
// static provider.
func selfCPU() cpuTime {
	_, cpu, _ := procCPU(os.Getpid())
	return cpu
}

// procCPU reads the process group, utime and stime of pid. The command
// name (field 2) may hold spaces and parentheses, so fields are counted
// from the last ')'.
func procCPU(pid int) (pgrp int, cpu cpuTime, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, cpuTime{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, cpuTime{}, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
	if len(f) < 13 {
		return 0, cpuTime{}, false
	}
	pgrp, err1 := strconv.Atoi(f[2])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, cpuTime{}, false
	}
	return pgrp, cpuTime{time.Duration(ut) * clockTick, time.Duration(st) * clockTick}, true
}
