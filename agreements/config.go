// Package agreements is the emulator's fake SDS and data-sharing agreement
// table: it says which system may send and receive which interaction, where
// each provider lives, and whether a request passes the SSP's checks.
package agreements

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is the `registry:` section of config.yaml, also the whole of a
// separate registry file; it holds what the user wrote, unexpanded and
// unvalidated, so Build can report every problem at once.
type Config struct {
	Systems    []SystemConfig    `yaml:"systems"`
	Agreements []AgreementConfig `yaml:"agreements"`
}

// SystemConfig is one registered system as written in the configuration:
// a consumer fills fqdn and sends, a provider endpoint, cpa_id and receives.
type SystemConfig struct {
	ASID     string   `yaml:"asid"`
	Name     string   `yaml:"name"`
	ODS      string   `yaml:"ods"`
	PartyKey string   `yaml:"party_key"`
	FQDN     string   `yaml:"fqdn"`
	Endpoint string   `yaml:"endpoint"`
	CPAID    string   `yaml:"cpa_id"`
	Sends    []string `yaml:"sends"`
	Receives []string `yaml:"receives"`

	// SupplierODS is the ODS code of the system's supplier (manufacturer):
	// SDS's nhsMhsManufacturerOrg, which a consumer names in the
	// manufacturing-organization search to find its own ASID.
	SupplierODS string `yaml:"supplier_ods"`
}

// AgreementConfig is one data-sharing agreement as written in the
// configuration. NotBefore and NotAfter are optional, RFC 3339 or
// YYYY-MM-DD (midnight UTC); the agreement is in force from NotBefore
// (inclusive) until NotAfter (exclusive).
type AgreementConfig struct {
	From         string   `yaml:"from"`
	To           string   `yaml:"to"`
	Interactions []string `yaml:"interactions"`
	NotBefore    string   `yaml:"not_before"`
	NotAfter     string   `yaml:"not_after"`
}

// maxFileSize bounds a registry file so a wrong path (a log, a device)
// fails fast instead of being read whole.
const maxFileSize = 4 << 20

// LoadFile reads a separate registry file (the `registry_file:` key): YAML
// with top-level systems: and agreements: exactly as the registry: section.
// Unknown keys are errors naming the key and its line, so a mistyped key
// never silently drops a rule.
func LoadFile(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("registry file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("registry file %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return Config{}, fmt.Errorf("registry file %s: larger than %d bytes", path, maxFileSize)
	}
	return parse(path, data)
}

// parse decodes a registry file held in memory; name only labels errors.
func parse(name string, data []byte) (Config, error) {
	var c Config
	if err := decodeStrict(data, &c); err != nil {
		return Config{}, fmt.Errorf("registry file %s: %w", name, explain(err, data, c, false))
	}
	return c, nil
}

// configFile is a whole configuration file as ParseSection reads it: the
// registry: section strictly, every other section left to viper.
type configFile struct {
	Registry Config               `yaml:"registry"`
	Rest     map[string]yaml.Node `yaml:",inline"`
}

// ParseSection reads the registry: section of a configuration file (name
// labels errors). The CLI reads the registry this way rather than from
// viper's map, so a registry written in the config file gets the same
// strict decoding and the same errors, with lines, as a registry file.
func ParseSection(name string, data []byte) (Config, error) {
	var f configFile
	if err := decodeStrict(data, &f); err != nil {
		return Config{}, fmt.Errorf("config file %s: registry: %w", name, explain(err, data, f.Registry, true))
	}
	return f.Registry, nil
}

// decodeStrict decodes the one YAML document of data into v, refusing
// unknown keys; an empty document leaves v as it is.
func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file registers nothing
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document (only the first would be read)")
	}
	return nil
}

// yaml.v3 reports unknown keys and wrong types as lines of text in a
// TypeError, naming the line and the Go type; these match them.
var (
	unknownField = regexp.MustCompile(`^line (\d+): field (.+) not found in type (\S+)$`)
	wrongType    = regexp.MustCompile(`^line (\d+): cannot unmarshal (!!\w+)(?: .*)? into (\S+)$`)
)

// explain rewrites yaml.v3's decoding errors in the registry's own words:
// every problem at once, each with its line, the system or agreement (by
// number, and ASID or sender and receiver as far as c, the partly decoded
// registry, has them) and the key. Errors that are not about the
// registry's shape (YAML syntax) keep yaml's message, which has the line.
func explain(err error, data []byte, c Config, section bool) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	items := locate(data, section)
	var errs []error
	seen := map[string]bool{}
	for _, msg := range te.Errors {
		if seen[msg] { // an aliased mapping is decoded, and reported, once per use
			continue
		}
		seen[msg] = true
		errs = append(errs, errors.New(items.rewrite(msg, c, section)))
	}
	return errors.Join(errs...)
}

// lists holds, for the systems: and agreements: lists, the node of each
// item, to tell from a line which item an error is about.
type lists struct{ systems, agreements []*yaml.Node }

// locate finds the items of the registry's lists in data (the registry: in
// a configuration file when section is true).
func locate(data []byte, section bool) lists {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return lists{}
	}
	root := doc.Content[0]
	if section {
		root = value(root, "registry")
	}
	return lists{items(value(root, "systems")), items(value(root, "agreements"))}
}

// value is the value of key in mapping m, or nil.
func value(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func items(seq *yaml.Node) []*yaml.Node {
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return nil
	}
	return seq.Content
}

// at is the index of the item of list holding line, or -1 when no item or
// several (a flow list on one line) start at or before it on its line.
func at(list []*yaml.Node, line int) int {
	i := -1
	for j, n := range list {
		if n.Line <= line {
			i = j
		}
	}
	if i < 0 || (i > 0 && list[i-1].Line == list[i].Line) {
		return -1
	}
	return i
}

// rewrite is one yaml.v3 error line in the registry's words.
func (l lists) rewrite(msg string, c Config, section bool) string {
	top := "at the top level"
	topMust := "the top level must be a mapping with systems: and agreements:"
	if section {
		top, topMust = "in registry", "registry must be a mapping with systems: and agreements:"
	}
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		line, key, typ := m[1], m[2], m[3]
		switch typ {
		case typeName[Config]():
			if key == "registry" && !section {
				return fmt.Sprintf("line %s: unknown key %q at the top level (a registry file holds systems: and agreements: at the top level, without registry:)", line, key)
			}
			return fmt.Sprintf("line %s: unknown key %q %s (known keys: %s)", line, key, top, keysOf[Config]())
		case typeName[SystemConfig]():
			return fmt.Sprintf("line %s: unknown key %q in %s (known keys: %s)", line, key, l.system(atoi(line), c), keysOf[SystemConfig]())
		case typeName[AgreementConfig]():
			return fmt.Sprintf("line %s: unknown key %q in %s (known keys: %s)", line, key, l.agreement(atoi(line), c), keysOf[AgreementConfig]())
		}
		return msg
	}
	m := wrongType.FindStringSubmatch(msg)
	if m == nil {
		return msg // a duplicate key: yaml's message names it and both lines
	}
	line, tag, typ := m[1], m[2], m[3]
	n := atoi(line)
	got := kindOf(tag)
	switch typ {
	case typeName[Config]():
		return fmt.Sprintf("line %s: %s, not %s", line, topMust, got)
	case "[]" + typeName[SystemConfig]():
		return fmt.Sprintf("line %s: systems must be a list, not %s", line, got)
	case "[]" + typeName[AgreementConfig]():
		return fmt.Sprintf("line %s: agreements must be a list, not %s", line, got)
	case typeName[SystemConfig]():
		return fmt.Sprintf("line %s: %s must be a mapping of keys, not %s", line, l.system(n, c), got)
	case typeName[AgreementConfig]():
		return fmt.Sprintf("line %s: %s must be a mapping of keys, not %s", line, l.agreement(n, c), got)
	}
	want := "text"
	if typ == "[]string" {
		want = "a list, e.g. [foundations]"
	}
	where := "the registry"
	var item *yaml.Node
	if i := at(l.systems, n); i >= 0 {
		where, item = l.system(n, c), l.systems[i]
	}
	if i := at(l.agreements, n); i >= 0 && (item == nil || l.agreements[i].Line > item.Line) {
		where, item = l.agreement(n, c), l.agreements[i]
	}
	if key := keyAt(item, n, tag); key != "" {
		return fmt.Sprintf("line %s: %s in %s must be %s, not %s", line, key, where, want, got)
	}
	return fmt.Sprintf("line %s: a value in %s must be %s, not %s", line, where, want, got)
}

// system and agreement label the item of their list holding line, with
// what c knows of it.
func (l lists) system(line int, c Config) string {
	i := at(l.systems, line)
	if i < 0 {
		return "a system"
	}
	if i < len(c.Systems) && c.Systems[i].ASID != "" {
		return fmt.Sprintf("system %d (asid %q)", i+1, c.Systems[i].ASID)
	}
	return fmt.Sprintf("system %d", i+1)
}

func (l lists) agreement(line int, c Config) string {
	i := at(l.agreements, line)
	if i < 0 {
		return "an agreement"
	}
	if i < len(c.Agreements) {
		a := c.Agreements[i]
		return fmt.Sprintf("agreement %d (%s -> %s)", i+1, orNone(a.From), orNone(a.To))
	}
	return fmt.Sprintf("agreement %d", i+1)
}

// keyAt is the key of item whose value, tagged tag, is on line, when
// exactly one is.
func keyAt(item *yaml.Node, line int, tag string) string {
	for item != nil && item.Kind == yaml.AliasNode {
		item = item.Alias
	}
	if item == nil || item.Kind != yaml.MappingNode {
		return ""
	}
	var keys []string
	for i := 0; i+1 < len(item.Content); i += 2 {
		if v := item.Content[i+1]; v.Line == line && v.ShortTag() == tag {
			keys = append(keys, item.Content[i].Value)
		}
	}
	if len(keys) != 1 {
		return ""
	}
	return keys[0]
}

// kindOf names a YAML tag for a user.
func kindOf(tag string) string {
	switch tag {
	case "!!map":
		return "a mapping"
	case "!!seq":
		return "a list"
	case "!!null":
		return "empty"
	}
	return "a single value"
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// typeName is how yaml.v3 names T in its errors.
func typeName[T any]() string { return reflect.TypeFor[T]().String() }

// keysOf lists T's YAML keys in declaration order, for error messages.
func keysOf[T any]() string {
	t := reflect.TypeFor[T]()
	var keys []string
	for i := range t.NumField() {
		if k, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); k != "" && k != "-" {
			keys = append(keys, k)
		}
	}
	return strings.Join(keys, ", ")
}
