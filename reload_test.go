package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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

func TestRegistryHotReload(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "registry.yaml")
	if err := os.WriteFile(reg, []byte(testRegistry+testAgreement), 0o600); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, "c.yaml", "state_dir: "+dir+"/state\nregistry_file: "+reg+
		"\nssp:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\ndemonstrator:\n  enabled: false\n")
	st, cfg := startTestStack(t, file)
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
	if err := os.WriteFile(reg, []byte(testRegistry+"  []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the edit to take effect", func() bool { return len(st.registry.Load().Agreements()) == 0 })
	if len(first.Agreements()) != 1 {
		t.Error("the old table changed under its readers")
	}
	// A broken edit: the table in force stays, the failure is counted.
	kept := st.registry.Load()
	broken := strings.Replace(testRegistry, `asid: "918999198993"`, `asid: "91899919899"`, 1) + testAgreement + "  - from: nobody\n"
	if err := os.WriteFile(reg, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed reload to be counted", func() bool { return st.reloads.Load() == 1 })
	if st.registry.Load() != kept {
		t.Error("a broken registry replaced the table in force")
	}
	// Fixing the file brings the agreement back.
	if err := os.WriteFile(reg, []byte(testRegistry+testAgreement), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fixed file to take effect", func() bool { return len(st.registry.Load().Agreements()) == 1 })
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
	file := writeFile(t, "c.yaml", "state_dir: "+dir+"\nssp:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\ndemonstrator:\n  enabled: false\n")
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
