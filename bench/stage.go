package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"sspemu/certs"
)

// stage is everything one bench run has set up: the built binary, the
// throwaway PKI, the static provider and the child processes.
type stage struct {
	o   options
	out io.Writer
	dir string // temporary; removed on close unless -keep
	bin string // the sspemu binary
	// baseBin is the sspemu binary built from -baseline, empty without it.
	baseBin string
	pki     string
	prov    *provider
	procs   []*child
	checks  []checkResult // issue 17's targets, in the order measured
	floors  []string      // with -references: what Go's stacks alone reach against nginx

	consumerTLS  *tls.Config // the default consumer (toward the SSP, nginx and the static provider)
	sspClientTLS *tls.Config // the SSP's client identity (toward the demonstrator directly)
}

// child is a process the bench started and must end.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func newStage(ctx context.Context, o options, out io.Writer) (_ *stage, err error) {
	dir, err := os.MkdirTemp("", "sspemu-bench-")
	if err != nil {
		return nil, err
	}
	st := &stage{o: o, out: out, dir: dir}
	defer func() {
		if err != nil {
			st.close() // st, not the nil result
		}
	}()
	repo, err := filepath.Abs(o.repo)
	if err != nil {
		return nil, err
	}
	st.bin = filepath.Join(dir, "sspemu")
	st.printf("building sspemu from %s", repo)
	build := exec.CommandContext(ctx, "go", "build", "-o", st.bin, ".")
	build.Dir = repo
	if b, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build in %s: %w\n%s", repo, err, b)
	}
	if o.baseline != "" {
		if st.baseBin, err = buildRevision(ctx, repo, o.baseline, dir, out); err != nil {
			return nil, err
		}
	}
	st.pki = filepath.Join(dir, "pki")
	if b, err := exec.CommandContext(ctx, st.bin, "certs", "init", "--dir", st.pki).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sspemu certs init: %w\n%s", err, b)
	}
	if st.consumerTLS, err = st.clientTLS(certs.ConsumerFile, certs.ConsumerKeyFile); err != nil {
		return nil, err
	}
	if st.sspClientTLS, err = st.clientTLS(certs.SSPClientFile, certs.SSPClientKeyFile); err != nil {
		return nil, err
	}
	if st.prov, err = startProvider(st.pki); err != nil {
		return nil, err
	}
	return st, nil
}

// buildRevision builds sspemu as it is at git revision rev of repo (its
// files from git archive, so the work tree is not touched) into dir, and
// says which commit that is.
func buildRevision(ctx context.Context, repo, rev, dir string, out io.Writer) (string, error) {
	commit, err := exec.CommandContext(ctx, "git", "-C", repo, "rev-parse", "--short", rev+"^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("-baseline %q is not a commit of %s: %w", rev, repo, err)
	}
	tarball, err := exec.CommandContext(ctx, "git", "-C", repo, "archive", "--format=tar", rev).Output()
	if err != nil {
		return "", fmt.Errorf("git archive %s: %w", rev, err)
	}
	src := filepath.Join(dir, "baseline-src")
	if err := os.MkdirAll(src, 0o700); err != nil {
		return "", err
	}
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	untar.Stdin = bytes.NewReader(tarball)
	if b, err := untar.CombinedOutput(); err != nil {
		return "", fmt.Errorf("unpacking %s: %w\n%s", rev, err, b)
	}
	bin := filepath.Join(dir, "sspemu-baseline")
	fmt.Fprintf(out, "building the baseline sspemu from %s (commit %s)\n", rev, strings.TrimSpace(string(commit)))
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = src
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build of %s: %w\n%s", rev, err, b)
	}
	return bin, nil
}

func (st *stage) pkiFile(name string) string { return filepath.Join(st.pki, name) }

// clientTLS is a load generator's TLS: one client certificate, the dev CA,
// TLS 1.2 or later, session resumption.
func (st *stage) clientTLS(cert, key string) (*tls.Config, error) {
	pair, err := certs.LoadKeyPair(st.pkiFile(cert), st.pkiFile(key))
	if err != nil {
		return nil, err
	}
	pool, err := certs.LoadCertPool(st.pkiFile(certs.CAFile))
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates:       []tls.Certificate{pair},
		RootCAs:            pool,
		MinVersion:         tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
		NextProtos:         []string{"http/1.1"},
	}, nil
}

// close ends every child (SIGTERM, then SIGKILL after 5 s), stops the
// provider and removes the temporary directory.
func (st *stage) close() {
	for i := len(st.procs) - 1; i >= 0; i-- {
		st.procs[i].stop()
	}
	if st.prov != nil {
		st.prov.close()
	}
	if st.o.keep {
		fmt.Fprintf(st.out, "kept %s\n", st.dir)
		return
	}
	os.RemoveAll(st.dir)
}

// start runs a child in its own process group, its output in a log file.
// Several sspemu processes run at once, so none serves the Spine services
// on their fixed ports; an environment variable, not a config key, so that
// a -baseline build from before spine: reads the same config (it ignores
// the variable).
func (st *stage) start(name string, args ...string) (*child, error) {
	return st.startEnv(name, []string{"SSPEMU_SPINE_ENABLED=false"}, args...)
}

// startEnv is start with env added to the bench's environment.
func (st *stage) startEnv(name string, env []string, args ...string) (*child, error) {
	logPath := filepath.Join(st.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = st.dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(c.done) }()
	st.procs = append(st.procs, c)
	return c, nil
}

// pgid is the child's process group (it leads its own).
func (c *child) pgid() int { return c.cmd.Process.Pid }

func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
}

// tail is the end of the child's log, for error messages.
func (c *child) tail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// waitReady polls addr until it accepts a TCP connection, the child exits,
// or 30 s pass.
func (c *child) waitReady(ctx context.Context, addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("%s exited before listening on %s:\n%s", c.name, addr, c.tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s is not listening on %s after 30 s:\n%s", c.name, addr, c.tail())
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// sspInstance is one running sspemu serve.
type sspInstance struct {
	*child
	addr     string // consumer-facing, 127.0.0.1:port
	admin    string
	config   string
	endpoint string // the provider's registered service root
	sync     string
}

// startSSP runs sspemu serve with audit.sync and, with demo, the built-in
// demonstrator as the provider; otherwise the static provider is registered.
func (st *stage) startSSP(ctx context.Context, name, sync string, demo bool) (*sspInstance, error) {
	return st.startSSPBin(ctx, st.bin, name, sync, demo)
}

// prepare picks n free loopback ports for an sspemu instance called name
// and makes its state directory, holding a link to the bench's PKI.
func (st *stage) prepare(name string, n int) ([]int, string, error) {
	ports := make([]int, n)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, "", err
		}
		ports[i] = p
	}
	state := filepath.Join(st.dir, name)
	if err := os.MkdirAll(state, 0o700); err != nil {
		return nil, "", err
	}
	if err := os.Symlink(st.pki, filepath.Join(state, "pki")); err != nil {
		return nil, "", err
	}
	return ports, state, nil
}

// startSSPBin is startSSP with another sspemu binary (the -baseline build).
func (st *stage) startSSPBin(ctx context.Context, bin, name, sync string, demo bool) (*sspInstance, error) {
	ports, state, err := st.prepare(name, 3)
	if err != nil {
		return nil, err
	}
	endpoint := st.prov.root
	if demo {
		endpoint = fmt.Sprintf("https://localhost:%d/A20047/STU3/1/gpconnect", ports[2])
	}
	s := &sspInstance{
		addr:     fmt.Sprintf("127.0.0.1:%d", ports[0]),
		admin:    fmt.Sprintf("127.0.0.1:%d", ports[1]),
		config:   filepath.Join(st.dir, name+".yaml"),
		endpoint: endpoint,
		sync:     sync,
	}
	conf := fmt.Sprintf(sspConfig, state, s.addr, s.admin, sync, demo, ports[2], endpoint)
	if err := os.WriteFile(s.config, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	c, err := st.startEnv(name, append([]string{"SSPEMU_SPINE_ENABLED=false"}, strings.Fields(st.o.sspEnv)...), bin, "serve", "--config", s.config)
	if err != nil {
		return nil, err
	}
	s.child = c
	if err := c.waitReady(ctx, s.addr); err != nil {
		return nil, err
	}
	if demo {
		if err := c.waitReady(ctx, fmt.Sprintf("localhost:%d", ports[2])); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// sspConfig is merged over sspemu's embedded config.yaml; only the
// listeners, the audit sync mode, the demonstrator switch and the
// provider's endpoint differ from the defaults, so every check is enforced.
const sspConfig = `state_dir: %s
ssp:
  listen: %s
admin:
  listen: %s
audit:
  sync: %s
log:
  level: warn
demonstrator:
  enabled: %t
  listen: localhost:%d
  # The one-practice form: A20047 alone, which this registry lists (builds
  # before and after practices as data read it alike).
  asid: "918999198993"
  ods: A20047
registry:
  systems:
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
      endpoint: %s
      cpa_id: S20001A000002
      receives: [foundations, appointments]
  agreements:
    - from: "200000000359"
      to: "918999198993"
      interactions: [foundations, appointments]
`

// token asks sspemu token for a fresh JWT for interaction.
func (st *stage) token(ctx context.Context, config, interaction string) (string, error) {
	cmd := exec.CommandContext(ctx, st.bin, "token", "--config", config, "--interaction", interaction)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("sspemu token: %w: %s", err, stderr.String())
	}
	return strings.TrimSpace(string(b)), nil
}

// rssKiB is the resident set of pid from /proc.
func rssKiB(pid int) (int64, error) {
	return procStatus(pid, "VmRSS:")
}

// threads is the OS thread count of pid from /proc.
func threads(pid int) (int64, error) {
	return procStatus(pid, "Threads:")
}

func procStatus(pid int, key string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			var n int64
			_, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &n)
			return n, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, pid)
}

// describeMachine prints what the numbers were measured on.
func (st *stage) describeMachine() {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	nginx := "not installed yet"
	if b, err := exec.Command("nginx", "-v").CombinedOutput(); err == nil {
		nginx = strings.TrimSpace(string(b))
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	st.printf("machine: %d CPUs (%s), %s, %s/%s; %s; load average before the run: %s",
		runtime.NumCPU(), model, runtime.Version(), runtime.GOOS, runtime.GOARCH, nginx, load)
	st.printf("load: vegeta, %d workers, keep-alive HTTP/1.1, client certificates; %d rounds of %s (+%s warm-up) per contender",
		st.o.workers, st.o.rounds, st.o.duration, st.o.warmup)
}

var errNoNginx = errors.New("nginx is not installed and could not be installed")

// ensureNginx installs Debian's nginx-light when nginx is missing.
func (st *stage) ensureNginx(ctx context.Context) error {
	if _, err := exec.LookPath("nginx"); err == nil {
		return nil
	}
	st.printf("nginx missing: apt-get update && apt-get install -y nginx-light")
	var log bytes.Buffer
	for _, args := range [][]string{{"apt-get", "update"}, {"apt-get", "install", "-y", "--no-install-recommends", "nginx-light"}} {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		cmd := exec.CommandContext(cctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = &log, &log
		err := cmd.Run()
		cancel()
		if err != nil {
			return fmt.Errorf("%w: %s: %v\n%s", errNoNginx, strings.Join(args, " "), err, log.String())
		}
	}
	if _, err := exec.LookPath("nginx"); err != nil {
		return errNoNginx
	}
	return nil
}
