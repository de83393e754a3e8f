package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/viper"
)

// run executes the CLI with args and returns its output and error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCmd(&out, &out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestUnreadableConfigIsOneProblem: a missing or broken --config file is
// one clear problem for check-config and serve alike, not that problem
// followed by every key of an empty configuration.
func TestUnreadableConfigIsOneProblem(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	broken := writeFile(t, "broken.yaml", "ssp:\n  listen: [localhost:1\n  fidelity: spec\n")
	for _, tc := range []struct{ file, want string }{
		{missing, "config file " + missing + " does not exist"},
		{broken, "config file " + broken + " is not valid YAML"},
	} {
		out, err := run(t, "check-config", "--config", tc.file)
		if !errors.Is(err, errReported) || !strings.Contains(out, tc.want) || !strings.HasSuffix(out, "\n1 problem(s)\n") {
			t.Errorf("check-config --config %s: %v\n%s", tc.file, err, out)
		}
		out, err = run(t, "serve", "--config", tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") || out != "" {
			t.Errorf("serve --config %s: %v, output %q; want the one problem", tc.file, err, out)
		}
	}
}

// TestServeReportsEveryProblem: serve lists every problem of the
// configuration, as check-config does, before it opens anything.
func TestServeReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, "c.yaml", "state_dir: "+dir+"\nssp:\n  fidelity: loose\n  max_body_bytes: -1\n  upstream_timout: 5s\nadmin:\n  listen: nothere\n")
	t.Setenv("SSPEMU_SSP_LISTN", "localhost:1")
	out, err := run(t, "serve", "--config", file)
	if !errors.Is(err, errReported) {
		t.Fatalf("serve returned %v, want every problem reported\n%s", err, out)
	}
	for _, want := range []string{"SSPEMU_SSP_LISTN", `unknown key "ssp.upstream_timout"`, "ssp.fidelity", "ssp.max_body_bytes", "admin.listen", "5 problem(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve's report lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "sspemu ready") || fileExists(filepath.Join(dir, "pki")) {
		t.Error("serve started (or made the PKI) with a broken configuration")
	}
}

// TestUnknownEnvironmentVariables: an SSPEMU_ variable that sets no key is
// refused by name, with the likely intended one; every key's own variable
// is accepted.
func TestUnknownEnvironmentVariables(t *testing.T) {
	v := viper.New()
	if _, err := loadConfig(v, "", nil); err != nil {
		t.Fatal(err)
	}
	keys := v.AllKeys()
	var environ []string
	for _, k := range keys {
		if !strings.HasPrefix(k, "registry.") {
			environ = append(environ, envName(k)+"=x")
		}
	}
	if errs := unknownEnv(append(environ, "HOME=/root", "SSPEMUX=1"), keys); len(errs) != 0 {
		t.Errorf("the keys' own variables refused: %v", errs)
	}
	// The registry's lists are read from files only: a variable naming one
	// would be ignored, so it is refused, saying where the registry goes.
	if errs := unknownEnv([]string{"SSPEMU_REGISTRY_SYSTEMS=x", "SSPEMU_REGISTRY_FILE=r.yaml"}, keys); len(errs) != 1 ||
		!strings.Contains(errs[0].Error(), "SSPEMU_REGISTRY_SYSTEMS: the registry is read from files only") {
		t.Errorf("SSPEMU_REGISTRY_SYSTEMS: %v", errs)
	}
	for _, name := range []string{"SSPEMU_SSP_LISTEN", "SSPEMU_SSP_MAX_BODY_BYTES", "SSPEMU_AUDIT_DIR", "SSPEMU_STATE_DIR"} {
		if !slices.Contains(environ, name+"=x") {
			t.Errorf("%s is not the variable of a key", name)
		}
	}
	errs := unknownEnv([]string{"SSPEMU_SSP_LISTN=x", "SSPEMU_STATEDIR=y", "SSPEMU_NONSENSE_AT_ALL=z"}, keys)
	got := errors.Join(errs...).Error()
	for _, want := range []string{
		"SSPEMU_SSP_LISTN: no configuration key has this name; did you mean SSPEMU_SSP_LISTEN?",
		"SSPEMU_STATEDIR: no configuration key has this name; did you mean SSPEMU_STATE_DIR?",
		"SSPEMU_NONSENSE_AT_ALL: no configuration key has this name\n",
	} {
		if !strings.Contains(got+"\n", want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	t.Setenv("SSPEMU_SSP_LISTN", "localhost:1")
	out, err := run(t, "check-config")
	if !errors.Is(err, errReported) || !strings.Contains(out, "did you mean SSPEMU_SSP_LISTEN?") {
		t.Errorf("check-config with a mistyped variable: %v\n%s", err, out)
	}
}

// TestCertsWithoutCAHint: issuing or revoking without a dev CA says how to
// make one.
func TestCertsWithoutCAHint(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"certs", "issue", "--dir", dir, "--name", "x.example", "--client"},
		{"certs", "revoke", "--dir", dir, "--cert", filepath.Join(dir, "x.pem")},
	} {
		_, err := run(t, args...)
		if err == nil || !strings.Contains(err.Error(), "sspemu certs init --dir "+dir) {
			t.Errorf("%v: %v, want a hint to run certs init", args, err)
		}
	}
}

// syncWriter collects a running command's log.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestShutdownIsLogged: serve says why it stops and that it has stopped.
func TestShutdownIsLogged(t *testing.T) {
	dir := t.TempDir()
	// Every listener on a free port: a developer's own `go run .` may hold
	// the default ones while the tests run.
	file := writeFile(t, "c.yaml", "state_dir: "+dir+"\nssp:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\ndemonstrator:\n  enabled: false\n"+
		"spine:\n  listen: 127.0.0.1:0\n  ldap:\n    listen: 127.0.0.1:0\n    ldaps_listen: 127.0.0.1:0\n")
	var logs syncWriter
	root := newRootCmd(&logs, &logs)
	root.SetArgs([]string{"serve", "--config", file})
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs.String(), "sspemu ready") {
		select {
		case err := <-done:
			t.Fatalf("serve stopped before it was ready: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel(errors.New("terminated signal received"))
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, logs.String())
	}
	for _, want := range []string{`msg="sspemu shutting down: finishing requests in flight (10 s at most)" reason="terminated signal received"`,
		`msg="sspemu shut down: the audit logs are closed"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
