package profile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"sspemu/fhir/fhirtest"
)

// EnvDir is the environment variable that names the profiles folder; when
// unset, tests use ../shared/gpconnect-fhir beside the module root. It has
// no SSPEMU_ prefix: sspemu refuses SSPEMU_ variables that set no
// configuration key, and the root package's tests load the configuration.
const EnvDir = "GPCONNECT_FHIR_DIR"

// Where the profiles come from, for the message when they are missing.
const source = "the folders StructureDefinitions/, ValueSets/ and CodeSystems/ of " +
	"https://github.com/nhsconnect/gpconnect-fhir, branch release/1.2.7"

// Dir returns the profiles folder a test should use: $GPCONNECT_FHIR_DIR,
// or else ../shared/gpconnect-fhir relative to the module root (the first
// directory up from the working directory with go.mod). In a linked git
// worktree the repository's own root counts too: the worktree's module
// root is then tried first, then the root of the main working tree its
// .git file leads to. When no candidate exists, Dir returns the first, for
// the message.
func Dir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root := ""
	for dir := wd; root == ""; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			root = dir
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
		dir = parent
	}
	candidates := []string{filepath.Join(root, "..", "shared", "gpconnect-fhir")}
	if main := mainWorktree(root); main != "" {
		candidates = append(candidates, filepath.Join(main, "..", "shared", "gpconnect-fhir"))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return candidates[0], nil
}

// mainWorktree is the root of the main working tree when dir is a linked
// git worktree (its .git is a file "gitdir: <repo>/.git/worktrees/<name>",
// and that directory's commondir leads to <repo>/.git), else "".
func mainWorktree(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, ".git"))
	if err != nil {
		return "" // not a worktree, or .git is the repository itself
	}
	gitdir, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir: ")
	if !ok {
		return ""
	}
	if !filepath.IsAbs(gitdir) {
		gitdir = filepath.Join(dir, gitdir)
	}
	common, err := os.ReadFile(filepath.Join(gitdir, "commondir"))
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(common))
	if !filepath.IsAbs(c) {
		c = filepath.Join(gitdir, c)
	}
	if filepath.Base(c) != ".git" {
		return ""
	}
	return filepath.Dir(c)
}

// loaded keeps each folder's Set for the test binary's life: loading the
// published set takes a noticeable fraction of a second, checking with it
// does not.
var loaded sync.Map // dir → *onceSet

type onceSet struct {
	once sync.Once
	set  *Set
	err  error
}

// ForTest returns the Set of Dir(), loaded once per test binary. A folder
// that is missing or unreadable fails the test, saying where to get the
// profiles: the check is the point of the test, so it never skips.
func ForTest(tb testing.TB) *Set {
	tb.Helper()
	dir, err := Dir()
	if err != nil {
		tb.Fatalf("profile: cannot find the GP Connect profiles folder: %v", err)
	}
	v, _ := loaded.LoadOrStore(dir, &onceSet{})
	o := v.(*onceSet)
	o.once.Do(func() {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			o.err = fmt.Errorf("%s does not exist", dir)
			return
		}
		o.set, o.err = Load(dir)
	})
	if o.err != nil {
		tb.Fatalf("profile: the GP Connect 1.2.7 profiles are needed: %v.\n"+
			"Put %s in %s, or set %s to the folder that holds them.", o.err, source, dir, EnvDir)
	}
	return o.set
}

// ForTestWithCore is ForTest's Set with the FHIR STU3 core terminology
// added (WithCoreTerminology): valuesets.json of the npm package fhir@3.3.1,
// which fhirtest.SchemaPath installs with the STU3 schema (scripts/fhir-xsd)
// and which lies beside it. Loaded once per test binary; a failure fails
// the test.
func ForTestWithCore(tb testing.TB) *Set {
	tb.Helper()
	set := ForTest(tb)
	xsd := fhirtest.SchemaPath(tb) // <cache>/package/schemas/stu3/fhir-single.xsd
	file := filepath.Join(filepath.Dir(xsd), "..", "..", "profiles", "stu3", "valuesets.json")
	v, _ := loaded.LoadOrStore(set.dir+"\x00"+file, &onceSet{})
	o := v.(*onceSet)
	o.once.Do(func() { o.set, o.err = set.WithCoreTerminology(file) })
	if o.err != nil {
		tb.Fatalf("%v", o.err)
	}
	return o.set
}
