//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package audit

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive lock on dir, because two processes appending to
// one chain would interleave sequence numbers and break it.
func lockDir(dir string) (io.Closer, error) {
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("audit: lock %s: the directory is in use by another writer: %w", dir, err)
	}
	return f, nil
}
