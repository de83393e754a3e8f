package audit

import (
	"errors"
	"fmt"
)

// The sync modes of Config.Sync and Options.Sync.
const (
	// SyncBatch fsyncs once per batch of concurrent records (group commit):
	// every record is durable before Append returns, at little cost.
	SyncBatch = "batch"
	// SyncAlways fsyncs every record on its own.
	SyncAlways = "always"
	// SyncNone never fsyncs; records may be lost in a crash. It exists
	// for benchmarks only and writes a notice saying so into each chain.
	SyncNone = "none"
)

// DefaultMaxFileBytes is the size at which a chain file rotates when no
// size is configured.
const DefaultMaxFileBytes int64 = 64 << 20

// DefaultRecentTransactions is how many transactions Transactions answers
// from memory when Options.RecentTransactions is zero.
const DefaultRecentTransactions = 10000

// Config is the audit section of the configuration file.
type Config struct {
	Dir          string `mapstructure:"dir"`            // empty: <state_dir>/audit, resolved by the caller
	Sync         string `mapstructure:"sync"`           // batch | always | none; empty means batch
	MaxFileBytes int64  `mapstructure:"max_file_bytes"` // 0 means DefaultMaxFileBytes
}

// Validate reports every problem of the audit section at once, so a user
// fixes the configuration in one go.
func (c Config) Validate() error {
	var errs []error
	if err := checkSync(c.Sync); err != nil {
		errs = append(errs, err)
	}
	if c.MaxFileBytes < 0 {
		errs = append(errs, fmt.Errorf("audit.max_file_bytes %d: must be 0 (default %d) or positive", c.MaxFileBytes, DefaultMaxFileBytes))
	}
	return errors.Join(errs...)
}

// Options turns the configuration into the options of Open.
func (c Config) Options() Options {
	return Options{Sync: c.Sync, MaxFileBytes: c.MaxFileBytes}
}

func checkSync(mode string) error {
	switch mode {
	case "", SyncBatch, SyncAlways, SyncNone:
		return nil
	}
	return fmt.Errorf("audit.sync %q: must be batch, always or none", mode)
}
