package audit

import (
	"errors"
	"fmt"
	"time"
)

// The sync modes of Config.Sync and Options.Sync.
const (
	// SyncInterval, the default, writes every record to the file (write(2),
	// into the kernel's page cache) before Append returns, so a killed
	// process loses nothing, and fsyncs at most Config.SyncInterval later
	// from a background goroutine, off the request path: a power cut or a
	// kernel crash can lose at most that interval's records.
	SyncInterval = "interval"
	// SyncBatch fsyncs once per batch of concurrent records (group commit):
	// every record is durable before Append returns, at little cost.
	SyncBatch = "batch"
	// SyncAlways fsyncs every record on its own.
	SyncAlways = "always"
	// SyncNone never fsyncs; records may be lost in a crash. It exists
	// for benchmarks only and writes a notice saying so into each chain.
	SyncNone = "none"
)

// DefaultSyncInterval bounds how long a record written under sync interval
// waits for its fsync when no interval is configured.
const DefaultSyncInterval = 100 * time.Millisecond

// DefaultMaxFileBytes is the size at which a chain file rotates when no
// size is configured.
const DefaultMaxFileBytes int64 = 64 << 20

// DefaultRecentTransactions is how many transactions Transactions answers
// from memory when Options.RecentTransactions is zero.
const DefaultRecentTransactions = 10000

// Config is the audit section of the configuration file.
type Config struct {
	Dir          string        `mapstructure:"dir"`            // empty: <state_dir>/audit, resolved by the caller
	Sync         string        `mapstructure:"sync"`           // interval | batch | always | none; empty means interval
	SyncInterval time.Duration `mapstructure:"sync_interval"`  // sync interval only; 0 means DefaultSyncInterval
	MaxFileBytes int64         `mapstructure:"max_file_bytes"` // 0 means DefaultMaxFileBytes
}

// Validate reports every problem of the audit section at once, so a user
// fixes the configuration in one go.
func (c Config) Validate() error {
	var errs []error
	if err := checkSync(c.Sync); err != nil {
		errs = append(errs, err)
	}
	if err := checkSyncInterval(c.SyncInterval); err != nil {
		errs = append(errs, err)
	}
	if c.MaxFileBytes < 0 {
		errs = append(errs, fmt.Errorf("audit.max_file_bytes %d: must be 0 (default %d) or positive", c.MaxFileBytes, DefaultMaxFileBytes))
	}
	return errors.Join(errs...)
}

// Options turns the configuration into the options of Open.
func (c Config) Options() Options {
	return Options{Sync: c.Sync, SyncInterval: c.SyncInterval, MaxFileBytes: c.MaxFileBytes}
}

func checkSync(mode string) error {
	switch mode {
	case "", SyncInterval, SyncBatch, SyncAlways, SyncNone:
		return nil
	}
	return fmt.Errorf("audit.sync %q: must be interval, batch, always or none", mode)
}

// maxSyncInterval bounds audit.sync_interval: the interval is what a power
// cut may cost, and a longer one is more likely a mistake than a choice.
const maxSyncInterval = time.Minute

func checkSyncInterval(d time.Duration) error {
	if d < 0 || d > maxSyncInterval {
		return fmt.Errorf("audit.sync_interval %v: must be 0 (default %v) or positive and at most %v", d, DefaultSyncInterval, maxSyncInterval)
	}
	return nil
}
