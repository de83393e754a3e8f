package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/viper"
)

const testRegistry = `systems:
  - asid: "200000000359"
    name: Example consumer
    ods: Y12345
    party_key: Y12345-0000001
    fqdn: consumer.sspemu.localhost
    sends: [foundations, appointments]
  - asid: "918999198993"
    name: GP Connect demonstrator
    ods: A20047
    party_key: A20047-0000002
    fqdn: localhost
    endpoint: https://localhost:9443/A20047/STU3/1/gpconnect
    cpa_id: S20001A000002
    receives: [foundations, appointments]
agreements:
`

const testAgreement = `  - from: "200000000359"
    to: "918999198993"
    interactions: [foundations, appointments]
`

// startTestStack runs the SSP and admin listener (no demonstrator) on
// random ports with the given config file.
func startTestStack(t *testing.T, file string) (*stack, Config) {
	t.Helper()
	cfg, err := loadConfig(viper.New(), file, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := start(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.shutdown(context.Background()) })
	return st, cfg
}

// startRegistryFileStack starts a stack whose registry lives in its own
// file (registry_file), with the demonstrator off.
func startRegistryFileStack(t *testing.T) (reg, file string, st *stack, cfg Config) {
	t.Helper()
	dir := t.TempDir()
	reg = filepath.Join(dir, "registry.yaml")
	if err := os.WriteFile(reg, []byte(testRegistry+testAgreement), 0o600); err != nil {
		t.Fatal(err)
	}
	file = writeFile(t, "c.yaml", "state_dir: "+dir+"/state\nregistry_file: "+reg+
		"\nssp:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\ndemonstrator:\n  enabled: false\nspine:\n  enabled: false\n")
	st, cfg = startTestStack(t, file)
	return reg, file, st, cfg
}

func TestRegistryHotReload(t *testing.T) {
	reg, file, st, cfg := startRegistryFileStack(t)
	rl := &reloader{st: st, file: file, interval: 10 * time.Millisecond, result: st.reloadResult}
	rl.prime(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rl.run(ctx)

	first := st.registry.Load()
	if len(first.Agreements()) != 1 {
		t.Fatalf("start: %d agreements", len(first.Agreements()))
	}
	// A valid edit: the agreement goes.
	writeAtomic(t, reg, testRegistry+"  []\n")
	waitFor(t, "the edit to take effect", func() bool { return len(st.registry.Load().Agreements()) == 0 })
	if len(first.Agreements()) != 1 {
		t.Error("the old table changed under its readers")
	}
	// A broken edit: the table in force stays, the failure is counted.
	kept := st.registry.Load()
	broken := strings.Replace(testRegistry, `asid: "918999198993"`, `asid: "91899919899"`, 1) + testAgreement + "  - from: nobody\n"
	writeAtomic(t, reg, broken)
	waitFor(t, "the failed reload to be counted", func() bool { return st.reloads.Load() == 1 })
	if st.registry.Load() != kept {
		t.Error("a broken registry replaced the table in force")
	}
	// Fixing the file brings the agreement back.
	writeAtomic(t, reg, testRegistry+testAgreement)
	waitFor(t, "the fixed file to take effect", func() bool { return len(st.registry.Load().Agreements()) == 1 })
}

// writeAtomic replaces path as careful tools do (temporary file, rename),
// so the watcher never sees it half written.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestReloadWaitsForTheFileToSettle writes the registry file in two steps
// with the watcher polling in between: the half-written file must never be
// loaded, and an empty registry is refused.
func TestReloadWaitsForTheFileToSettle(t *testing.T) {
	reg, file, st, cfg := startRegistryFileStack(t)
	first := st.registry.Load()
	var results []string
	var mu sync.Mutex
	rl := &reloader{st: st, file: file, interval: 20 * time.Millisecond, result: func(r string) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	}}
	rl.prime(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rl.run(ctx)
	// Truncate, let several polls pass, then write: like an editor that
	// truncates and is slow to write.
	if err := os.WriteFile(reg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the empty file to be judged", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(results) > 0
	})
	if st.registry.Load() != first {
		t.Fatal("an empty registry file replaced the table in force")
	}
	mu.Lock()
	if results[0] != "failed" {
		t.Errorf("an empty registry was accepted: %v", results)
	}
	mu.Unlock()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReadinessFollowsTheStack(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, "c.yaml", "state_dir: "+dir+"\nssp:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\ndemonstrator:\n  enabled: false\nspine:\n  enabled: false\n")
	st, _ := startTestStack(t, file)
	url := "http://" + st.addrs["admin"] + "/readyz"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("readyz of a running stack: %d", resp.StatusCode)
	}
	st.ready.Store(false) // as shutdown does first
	resp, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("readyz while stopping: %d, want 503", resp.StatusCode)
	}
}
