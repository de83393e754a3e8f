//go:build linux

package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"

	"sspemu/audit"
)

// TestAuditRecoversInARealProcess fills the disk under a running sspemu
// for real: the kernel refuses every write that would grow a file past
// RLIMIT_FSIZE, which the test lowers on the live process (prlimit) and
// raises again. Meanwhile the SSP must refuse with 503 (fail closed), say
// only that its audit is unavailable (no path, no OS error: those are in
// its log), report not ready on /readyz while /healthz stays up, and then
// recover by itself: 200 again, /readyz ready, log lines for the failure
// and the recovery, and chains that `sspemu audit verify` finds intact.
func TestAuditRecoversInARealProcess(t *testing.T) {
	bin := buildCrashBinary(t)
	state := t.TempDir()
	demoPort := freeLoopbackPort(t)
	cfgFile := writeCrashConfig(t, state, demoPort, audit.SyncBatch)
	target := "https://localhost:" + strconv.Itoa(demoPort) + "/A20047/STU3/1/gpconnect/metadata"
	p := startSSP(t, bin, cfgFile)
	m := regexp.MustCompile(`\badmin_addr=(\S+)`).FindStringSubmatch(p.stderr())
	if m == nil {
		t.Fatalf("no admin_addr in the log:\n%s", p.stderr())
	}
	admin := "http://" + m[1]
	client := consumerClient(t, filepath.Join(state, "pki"))
	token := crashToken(t, bin, cfgFile)
	url := "https://" + p.sspAddr + "/" + target
	call := func() (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Ssp-TraceID", uuid.NewString())
		req.Header.Set("Ssp-From", crashFrom)
		req.Header.Set("Ssp-To", crashTo)
		req.Header.Set("Ssp-InteractionID", "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "application/fhir+json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header, string(b)
	}
	status := func(path string) int {
		t.Helper()
		resp, err := http.Get(admin + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code, _, body := call(); code != 200 {
		t.Fatalf("before the fault: %d %s", code, body)
	}

	// The disk is full: no file may grow past its present size.
	auditFile := filepath.Join(state, "audit", "audit-000001.jsonl")
	fi, err := os.Stat(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := p.cmd.Process.Pid
	limit := uint64(fi.Size())
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: limit, Max: unix.RLIM_INFINITY}, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	code, h, body := call()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "OperationOutcome") {
		t.Fatalf("with the audit unwritable: %d %s, want 503 OperationOutcome", code, body)
	}
	reason := h.Get("Sspemu-Reason")
	if !strings.Contains(reason, "audit log is unavailable") {
		t.Errorf("Sspemu-Reason %q does not say the audit is unavailable", reason)
	}
	for _, leak := range []string{"/", "file too large", "file size", state, "jsonl"} {
		if strings.Contains(reason, leak) || strings.Contains(body, leak) && leak != "/" {
			t.Errorf("the consumer's answer shows %q: %s | %s", leak, reason, body)
		}
	}
	if s := status("/readyz"); s != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d while the audit cannot be written, want 503", s)
	}
	if s := status("/healthz"); s != 200 {
		t.Errorf("/healthz %d, want 200: the process is alive and will recover", s)
	}
	if code, _, _ := call(); code != http.StatusServiceUnavailable {
		t.Errorf("second request while full: %d, want 503", code)
	}

	// The disk has room again.
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for status("/readyz") != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never recovered; log:\n%s", p.stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _, body := call(); code != 200 {
		t.Fatalf("after recovery: %d %s", code, body)
	}
	log := p.stderr()
	for _, want := range []string{`msg="audit log not writable: requests are refused (fail closed) until it is; retrying" chain=audit`,
		"file too large", `msg="audit log writable again: requests are accepted" chain=audit`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(30 * time.Second); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, p.stderr())
	}
	dir := filepath.Join(state, "audit")
	verifyChains(t, bin, dir)
	verifyChains(t, bin, filepath.Join(dir, "demonstrator"))
	notices := 0
	for _, f := range mustGlob(t, filepath.Join(dir, "audit-*.jsonl")) {
		data, _ := os.ReadFile(f)
		notices += strings.Count(string(data), `"notice":"audit records could not be written`)
	}
	if notices != 1 {
		t.Errorf("%d gap notices in the audit chain, want 1", notices)
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("no files match %s: %v", pattern, err)
	}
	return m
}
