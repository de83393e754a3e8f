//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package audit

import "io"

type noLock struct{}

func (noLock) Close() error { return nil }

// lockDir does nothing where flock is unavailable; one writer per directory
// is then the operator's duty.
func lockDir(string) (io.Closer, error) { return noLock{}, nil }
