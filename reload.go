package main

import (
	"context"
	"os"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// reloader watches the config file and the registry file and, when either
// changes, validates the new registry and swaps it in whole. A broken file
// keeps the table in force; every problem is logged and the failure counted.
// Only the registry takes effect without a restart; listeners, TLS and
// modes are read once at start.
type reloader struct {
	st       *stack
	file     string // --config, may be empty
	flags    *pflag.FlagSet
	interval time.Duration
	result   func(result string) // counts reloads: "ok" or "failed"

	files []string
	last  map[string]stamp
}

type stamp struct {
	mod  time.Time
	size int64
	ok   bool
}

func stampOf(path string) stamp {
	if path == "" {
		return stamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	return stamp{fi.ModTime(), fi.Size(), true}
}

func (r *reloader) watched(cfg Config) []string {
	var files []string
	for _, f := range []string{r.file, cfg.RegistryFile} {
		if f != "" {
			files = append(files, f)
		}
	}
	return files
}

// prime takes the files' stamps as loaded, before serving starts, so an
// edit made at any moment after the load is seen.
func (r *reloader) prime(cfg Config) {
	r.files = r.watched(cfg)
	r.last = map[string]stamp{}
	for _, f := range r.files {
		r.last[f] = stampOf(f)
	}
}

// run polls until ctx ends. Polling the stamp (time and size) survives
// editors that save by renaming, which defeat naive file watches.
func (r *reloader) run(ctx context.Context) {
	files, last := r.files, r.last
	if len(files) == 0 {
		return
	}
	dirty := map[string]bool{}
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A change is loaded once the stamps hold still for a whole poll,
		// so a file caught between truncation and write is not loaded.
		moved := false
		for _, f := range files {
			if st := stampOf(f); st != last[f] {
				last[f], dirty[f], moved = st, true, true
			}
		}
		if moved || len(dirty) == 0 {
			continue
		}
		clear(dirty)
		newCfg, err := r.reload()
		if err != nil {
			continue
		}
		// registry_file itself may have been set, changed or removed.
		if nf := r.watched(newCfg); len(nf) != len(files) || (len(nf) > 1 && nf[1] != files[1]) {
			files = nf
			for _, f := range files {
				last[f] = stampOf(f)
			}
		}
	}
}

// reload reads the configuration again and swaps in its registry.
func (r *reloader) reload() (Config, error) {
	cfg, err := loadConfig(viper.New(), r.file, r.flags)
	if err == nil {
		table, berr := cfg.Registry.Build()
		if berr == nil && len(table.Systems()) == 0 {
			berr = errNoSystems
		}
		if err = berr; err == nil {
			r.st.registry.Store(table)
			r.result("ok")
			r.st.log.Info("registry reloaded", "systems", len(table.Systems()), "agreements", len(table.Agreements()))
			return cfg, nil
		}
		err = prefixEach("registry: ", err)
	}
	r.result("failed")
	r.st.log.Error("reload refused: the previous registry stays in force", "problems", len(flatten(err)))
	for _, p := range flatten(err) {
		r.st.log.Error("reload problem", "problem", p)
	}
	return Config{}, err
}
