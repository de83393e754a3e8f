package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"sspemu/agreements"
	"sspemu/audit"
	"sspemu/demonstrator"
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
	Registry     agreements.Config   `mapstructure:"registry"`
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

// loadConfig reads the embedded defaults, merges file over them, then the
// SSPEMU_* environment and the flags bound to v; unknown keys are errors.
// The returned Config is usable for further checks even when err names
// unknown keys, so check-config can report every problem at once.
func loadConfig(v *viper.Viper, file string, flags *pflag.FlagSet) (Config, error) {
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(defaultConfig)); err != nil {
		return Config{}, fmt.Errorf("embedded config.yaml: %w", err)
	}
	known := v.AllKeys()
	var problems []error
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return Config{}, fmt.Errorf("config file: %w", err)
		}
		user := viper.New()
		user.SetConfigType("yaml")
		if err := user.ReadConfig(bytes.NewReader(data)); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", file, err)
		}
		for _, k := range user.AllKeys() {
			if !slices.Contains(known, k) {
				problems = append(problems, fmt.Errorf("config file %s: unknown key %q", file, k))
			}
		}
		if err := v.MergeConfig(bytes.NewReader(data)); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", file, err)
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
	if c.Demonstrator.Enabled {
		if err := proxy.CheckListen(c.Demonstrator.Listen); err != nil {
			errs = append(errs, fmt.Errorf("demonstrator.listen: %w", err))
		}
	}
	errs = append(errs, c.Spine.validate())
	if t, err := c.Registry.Build(); err != nil {
		errs = append(errs, prefixEach("registry: ", err))
	} else if len(t.Systems()) == 0 {
		errs = append(errs, errNoSystems)
	}
	return errors.Join(errs...)
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
