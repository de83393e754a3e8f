package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"sspemu/agreements"
	"sspemu/audit"
	"sspemu/demonstrator"
	"sspemu/faults"
	"sspemu/proxy"
)

//go:embed config.yaml
var defaultConfig []byte

// Config is the whole configuration, each package owning its section.
type Config struct {
	StateDir     string              `mapstructure:"state_dir"`
	SSP          proxy.Config        `mapstructure:"ssp"`
	Admin        AdminConfig         `mapstructure:"admin"`
	Audit        audit.Config        `mapstructure:"audit"`
	Log          LogConfig           `mapstructure:"log"`
	Demonstrator demonstrator.Config `mapstructure:"demonstrator"`
	Spine        SpineConfig         `mapstructure:"spine"`
	RegistryFile string              `mapstructure:"registry_file"`
	// Registry is read from the YAML itself, not from viper's map
	// (loadRegistry): strictly, with lines in its errors, by the same
	// decoder as a registry_file.
	Registry agreements.Config `mapstructure:"-"`
	// RegistryYAML only takes viper's copy of the registry: section, so
	// UnmarshalExact does not call it unknown; nothing reads it.
	RegistryYAML any           `mapstructure:"registry"`
	Faults       faults.Config `mapstructure:"faults"`
}

// AdminConfig is the admin: section.
type AdminConfig struct {
	Listen string `mapstructure:"listen"`
}

// SpineConfig is the spine: section: the SDS and PDS FHIR APIs on one
// HTTPS listener and SDS over LDAP. It is read at start only; what the
// services answer follows the registry in force.
type SpineConfig struct {
	Enabled bool   `mapstructure:"enabled"`
	Listen  string `mapstructure:"listen"`
	APIKey  string `mapstructure:"api_key"`
	LDAP    struct {
		Enabled     bool   `mapstructure:"enabled"`
		Listen      string `mapstructure:"listen"`
		LDAPSListen string `mapstructure:"ldaps_listen"`
	} `mapstructure:"ldap"`
}

// validate names every bad spine: key; an empty LDAP address means that
// form is not served.
func (c SpineConfig) validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	if err := proxy.CheckListen(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("spine.listen: %w", err))
	}
	if c.LDAP.Enabled {
		for _, l := range [][2]string{{"spine.ldap.listen", c.LDAP.Listen}, {"spine.ldap.ldaps_listen", c.LDAP.LDAPSListen}} {
			if l[1] == "" {
				continue
			}
			if err := proxy.CheckListen(l[1]); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", l[0], err))
			}
		}
	}
	return errors.Join(errs...)
}

// LogConfig is the log: section.
type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// PKIDir is where the dev PKI lives.
func (c Config) PKIDir() string { return filepath.Join(c.StateDir, "pki") }

// AuditDir is where the audit and transaction logs live.
func (c Config) AuditDir() string {
	if c.Audit.Dir != "" {
		return c.Audit.Dir
	}
	return filepath.Join(c.StateDir, "audit")
}

// noConfigError is a configuration that could not be read at all (a
// missing or unparseable --config file): there is nothing to check
// further, so it is the one problem reported.
type noConfigError struct{ msg string }

func (e *noConfigError) Error() string { return e.msg }

func noConfig(format string, args ...any) error {
	return &noConfigError{fmt.Sprintf(format, args...)}
}

// unusable reports whether err means loadConfig could not read a
// configuration at all.
func unusable(err error) bool {
	var nc *noConfigError
	return errors.As(err, &nc)
}

// loadConfig reads the embedded defaults, merges file over them, then the
// SSPEMU_* environment and the flags bound to v; unknown keys and unknown
// SSPEMU_* variables are errors. The returned Config is usable for further
// checks even when err names unknown keys, so check-config can report every
// problem at once; an error for which unusable is true means it is not.
func loadConfig(v *viper.Viper, file string, flags *pflag.FlagSet) (Config, error) {
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(defaultConfig)); err != nil {
		return Config{}, fmt.Errorf("embedded config.yaml: %w", err)
	}
	known := v.AllKeys()
	problems := unknownEnv(os.Environ(), known)
	filePractices := false // the user's file lists demonstrator.practices
	var user *viper.Viper
	var data []byte
	if file != "" {
		var err error
		data, err = os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			return Config{}, noConfig("config file %s does not exist: give --config an existing file, "+
				"or leave --config out to run with the embedded defaults (config.yaml in the repository shows every key)", file)
		}
		if err != nil {
			return Config{}, noConfig("config file %s cannot be read: %v", file, err)
		}
		user = viper.New()
		user.SetConfigType("yaml")
		if err := user.ReadConfig(bytes.NewReader(data)); err != nil {
			return Config{}, noConfig("config file %s is not valid YAML: %v", file, yamlCause(err))
		}
		for _, k := range user.AllKeys() {
			// loadRegistry names unknown registry keys, with their lines.
			if !slices.Contains(known, k) && !strings.HasPrefix(k, "registry.") {
				problems = append(problems, fmt.Errorf("config file %s: unknown key %q", file, k))
			}
		}
		filePractices = user.IsSet("demonstrator.practices")
		if err := v.MergeConfig(bytes.NewReader(data)); err != nil {
			return Config{}, noConfig("config file %s: %v", file, err)
		}
	}
	v.SetEnvPrefix("SSPEMU")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if flags != nil {
		var errs []error
		flags.VisitAll(func(f *pflag.Flag) {
			if key, ok := f.Annotations[configKey]; ok {
				errs = append(errs, v.BindPFlag(key[0], f))
			}
		})
		if err := errors.Join(errs...); err != nil {
			return Config{}, err
		}
	}
	var c Config
	unmarshal := v.UnmarshalExact // also catches unknown keys inside lists
	if len(problems) > 0 {
		unmarshal = v.Unmarshal // those already named; read the rest
	}
	if err := unmarshal(&c); err != nil {
		problems = append(problems, fmt.Errorf("configuration: %w", err))
	}
	if filePractices && (c.Demonstrator.ASID != "" || c.Demonstrator.ODS != "") {
		problems = append(problems, fmt.Errorf("config file %s: demonstrator: set either practices or the earlier asid + ods, not both "+
			"(asid or ods, from the file or SSPEMU_DEMONSTRATOR_*, make a one-practice list and practices would be ignored)", file))
	}
	c.RegistryYAML = nil
	// The registry: section is checked even when registry_file replaces
	// it, as every other key is.
	reg, err := loadRegistry(file, data, user)
	if err != nil {
		problems = append(problems, err)
	}
	c.Registry = reg
	if c.RegistryFile != "" {
		reg, err := agreements.LoadFile(c.RegistryFile)
		if err != nil {
			problems = append(problems, fmt.Errorf("registry_file: %w", err))
		} else {
			c.Registry = reg
		}
	}
	c.SSP.ResolvePKI(c.PKIDir())
	return c, errors.Join(problems...)
}

// loadRegistry reads the registry: section of the embedded defaults and,
// over it, that of the user's file (data, read by user; nil without a
// file). As viper merged maps before, a list the file gives replaces the
// default's whole, and a list it leaves out keeps the default's.
func loadRegistry(file string, data []byte, user *viper.Viper) (agreements.Config, error) {
	reg, err := agreements.ParseSection("embedded config.yaml", defaultConfig)
	if err != nil || user == nil || !user.IsSet("registry") {
		return reg, err
	}
	mine, err := agreements.ParseSection(file, data)
	if err != nil {
		return agreements.Config{}, err
	}
	if user.IsSet("registry.systems") {
		reg.Systems = mine.Systems
	}
	if user.IsSet("registry.agreements") {
		reg.Agreements = mine.Agreements
	}
	return reg, nil
}

// envPrefix starts every environment variable that sets a key.
const envPrefix = "SSPEMU_"

// envName is the environment variable of a configuration key.
func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// unknownEnv names every SSPEMU_* variable in environ that sets no key:
// viper would ignore it, and a mistyped variable silently doing nothing is
// worse than an unknown key in a file, which is already an error.
func unknownEnv(environ, keys []string) []error {
	names := make(map[string]bool, len(keys))
	for _, k := range keys {
		if !strings.HasPrefix(k, "registry.") {
			names[envName(k)] = true
		}
	}
	var errs []error
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || names[name] {
			continue
		}
		if strings.HasPrefix(name, envName("registry.")) {
			errs = append(errs, fmt.Errorf("environment variable %s: the registry is read from files only: the config file's registry: or registry_file (SSPEMU_REGISTRY_FILE)", name))
			continue
		}
		msg := fmt.Sprintf("environment variable %s: no configuration key has this name", name)
		if near := nearest(name, names); near != "" {
			msg += "; did you mean " + near + "?"
		}
		errs = append(errs, errors.New(msg))
	}
	return errs
}

// nearest is the name in names closest to s by edit distance, when it is
// close enough (at most a third of s's length) to be a likely typo.
func nearest(s string, names map[string]bool) string {
	best, bestD := "", len(s)/3+1
	for n := range names {
		if d := editDistance(s, n); d < bestD || (d == bestD && best != "" && n < best) {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// yamlCause is the YAML parser's own message without viper's wrapping.
func yamlCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// configKey marks a flag with the config key it overrides.
const configKey = "sspemu-config-key"

// bindFlag ties a flag to a configuration key; loadConfig binds it.
func bindFlag(fs *pflag.FlagSet, name, key string) {
	_ = fs.SetAnnotation(name, configKey, []string{key})
}

// validate reports every problem of the configuration's values at once,
// each naming its key or item; proxy.Config.Files reads the certificates.
func (c Config) validate() error {
	var errs []error
	if c.StateDir == "" {
		errs = append(errs, errors.New("state_dir: must not be empty"))
	}
	errs = append(errs, c.SSP.Validate())
	if err := proxy.CheckListen(c.Admin.Listen); err != nil {
		errs = append(errs, fmt.Errorf("admin.listen: %w", err))
	}
	errs = append(errs, c.Audit.Validate())
	if _, err := newLogger(c.Log, os.Stderr); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Spine.validate())
	t, err := c.Registry.Build()
	if err != nil {
		errs = append(errs, prefixEach("registry: ", err))
	} else if len(t.Systems()) == 0 {
		errs = append(errs, errNoSystems)
	}
	if c.Demonstrator.Enabled {
		errs = append(errs, c.validatePractices(t))
	}
	errs = append(errs, c.Faults.Validate())
	return errors.Join(errs...)
}

// validatePractices checks the demonstrator's listener and practices, and
// each practice against the registry (t, nil when the registry does not
// build): a practice the SSP could never route to is a problem now, not a
// 400 or a 502 at the first call.
func (c Config) validatePractices(t *agreements.Table) error {
	var errs []error
	if err := proxy.CheckListen(c.Demonstrator.Listen); err != nil {
		errs = append(errs, fmt.Errorf("demonstrator.listen: %w", err))
	}
	if err := c.Demonstrator.Validate(); err != nil {
		errs = append(errs, err)
	}
	if t == nil {
		return errors.Join(errs...)
	}
	_, port, _ := net.SplitHostPort(c.Demonstrator.Listen)
	for i, p := range c.Demonstrator.PracticeList() {
		label := fmt.Sprintf("demonstrator practice %d (%s)", i+1, p.ODS)
		sys, ok := t.System(p.ASID)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no system with asid %q in the registry: register it (ods, party_key, endpoint, cpa_id, receives) and an agreement with its consumers", label, p.ASID))
			continue
		}
		if sys.ODS != p.ODS {
			errs = append(errs, fmt.Errorf("%s: the registry gives asid %s the ODS code %q, not %s", label, p.ASID, sys.ODS, p.ODS))
		}
		if err := checkServiceRoot(sys.Endpoint, p.ODS, port); err != nil {
			errs = append(errs, fmt.Errorf("%s: registry endpoint of asid %s: %w", label, p.ASID, err))
		}
	}
	return errors.Join(errs...)
}

// checkServiceRoot reports whether endpoint can be the service root of the
// practice ods on a demonstrator listening on port: https, the path
// /<ods>/STU3/1/gpconnect exactly, and that port (unless it is 0, chosen
// at start). The host is not compared: the SSP may reach the practices
// under another name (a container's) than the one they listen on.
func checkServiceRoot(endpoint, ods, port string) error {
	want := demonstrator.ServiceRootPath(ods)
	if endpoint == "" {
		return fmt.Errorf("empty: set it to https://<host>:%s%s", port, want)
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an https URL of a service root (https://<host>:%s%s)", endpoint, port, want)
	}
	if u.Path != want {
		return fmt.Errorf("%q is not the practice's service root: its path must be %s", endpoint, want)
	}
	got := u.Port()
	if got == "" {
		got = "443"
	}
	if port != "" && port != "0" && got != port {
		return fmt.Errorf("%q names port %s, but demonstrator.listen is on port %s", endpoint, got, port)
	}
	return nil
}

// errNoSystems refuses an empty registry: every request would be refused,
// and an empty registry file is more often one caught mid-write.
var errNoSystems = errors.New("registry: no systems: list at least the consumer and the provider under registry.systems (or in registry_file)")

// prefixEach puts prefix before every error joined in err, so each problem
// printed on its own line still says where it comes from.
func prefixEach(prefix string, err error) error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return fmt.Errorf("%s%w", prefix, err)
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, prefixEach(prefix, e))
	}
	return errors.Join(out...)
}
