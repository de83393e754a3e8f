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
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is the `registry:` section of config.yaml, also the whole of a
// separate registry file; it holds what the user wrote, unexpanded and
// unvalidated, so Build can report every problem at once.
type Config struct {
	Systems    []SystemConfig    `mapstructure:"systems" yaml:"systems"`
	Agreements []AgreementConfig `mapstructure:"agreements" yaml:"agreements"`
}

// SystemConfig is one registered system as written in the configuration:
// a consumer fills fqdn and sends, a provider endpoint, cpa_id and receives.
type SystemConfig struct {
	ASID     string   `mapstructure:"asid" yaml:"asid"`
	Name     string   `mapstructure:"name" yaml:"name"`
	ODS      string   `mapstructure:"ods" yaml:"ods"`
	PartyKey string   `mapstructure:"party_key" yaml:"party_key"`
	FQDN     string   `mapstructure:"fqdn" yaml:"fqdn"`
	Endpoint string   `mapstructure:"endpoint" yaml:"endpoint"`
	CPAID    string   `mapstructure:"cpa_id" yaml:"cpa_id"`
	Sends    []string `mapstructure:"sends" yaml:"sends"`
	Receives []string `mapstructure:"receives" yaml:"receives"`

	// SupplierODS is the ODS code of the system's supplier (manufacturer):
	// SDS's nhsMhsManufacturerOrg, which a consumer names in the
	// manufacturing-organization search to find its own ASID.
	SupplierODS string `mapstructure:"supplier_ods" yaml:"supplier_ods"`
}

// AgreementConfig is one data-sharing agreement as written in the
// configuration. NotBefore and NotAfter are optional, RFC 3339 or
// YYYY-MM-DD (midnight UTC); the agreement is in force from NotBefore
// (inclusive) until NotAfter (exclusive).
type AgreementConfig struct {
	From         string   `mapstructure:"from" yaml:"from"`
	To           string   `mapstructure:"to" yaml:"to"`
	Interactions []string `mapstructure:"interactions" yaml:"interactions"`
	NotBefore    string   `mapstructure:"not_before" yaml:"not_before"`
	NotAfter     string   `mapstructure:"not_after" yaml:"not_after"`
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

// topKeys, systemKeys and agreementKeys return the keys each level of a
// registry file may hold, in the order error messages list them; they are
// functions so no caller can change them.
func topKeys() []string { return []string{"systems", "agreements"} }

func systemKeys() []string {
	return []string{"asid", "name", "ods", "party_key", "fqdn", "endpoint", "cpa_id", "sends", "receives", "supplier_ods"}
}

func agreementKeys() []string {
	return []string{"from", "to", "interactions", "not_before", "not_after"}
}

// parse decodes a registry file held in memory; name only labels errors.
func parse(name string, data []byte) (Config, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, nil // an empty file registers nothing
		}
		return Config{}, fmt.Errorf("registry file %s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("registry file %s: more than one YAML document (only the first would be read)", name)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return Config{}, nil
	}
	if root.Kind != yaml.MappingNode {
		return Config{}, fmt.Errorf("registry file %s: line %d: the top level must be a mapping with systems: and agreements:", name, root.Line)
	}
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "systems":
			errs = append(errs, checkList(v, "system", systemKeys())...)
		case "agreements":
			errs = append(errs, checkList(v, "agreement", agreementKeys())...)
		case "registry":
			errs = append(errs, fmt.Errorf("line %d: unknown key %q at the top level (a registry file holds systems: and agreements: at the top level, without registry:)", k.Line, k.Value))
		default:
			errs = append(errs, unknownKey(k, "at the top level", topKeys()))
		}
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("registry file %s: %w", name, errors.Join(errs...))
	}
	var c Config
	if err := root.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("registry file %s: %w", name, err)
	}
	return c, nil
}

// checkList checks that seq is a list of mappings holding only known keys.
// Anchors, aliases and merge keys (<<) are ordinary YAML, so they are
// followed rather than refused.
func checkList(seq *yaml.Node, item string, known []string) []error {
	seq = deref(seq)
	if seq.Kind == yaml.ScalarNode && seq.ShortTag() == "!!null" {
		return nil
	}
	if seq.Kind != yaml.SequenceNode {
		return []error{fmt.Errorf("line %d: %ss must be a list", seq.Line, item)}
	}
	var errs []error
	seen := map[*yaml.Node]bool{}
	for n, m := range seq.Content {
		errs = append(errs, checkMapping(m, fmt.Sprintf("%s %d", item, n+1), known, seen, 0)...)
	}
	return errs
}

// checkMapping checks the keys of one list item, and of the mappings it
// merges. Each mapping is checked once (seen), so aliases cannot make the
// work grow faster than the file, and depth bounds merges of merges.
func checkMapping(m *yaml.Node, where string, known []string, seen map[*yaml.Node]bool, depth int) []error {
	m = deref(m)
	if m.Kind != yaml.MappingNode || depth > 8 {
		return []error{fmt.Errorf("line %d: %s must be a mapping of keys", m.Line, where)}
	}
	if seen[m] {
		return nil
	}
	seen[m] = true
	var errs []error
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], deref(m.Content[i+1])
		switch {
		case k.Value == "<<" && k.ShortTag() == "!!merge":
			merged := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				merged = v.Content
			}
			for _, mm := range merged {
				errs = append(errs, checkMapping(mm, where, known, seen, depth+1)...)
			}
		case !slices.Contains(known, k.Value):
			errs = append(errs, unknownKey(k, "in "+where, known))
		}
	}
	return errs
}

// deref follows an alias to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func unknownKey(k *yaml.Node, where string, known []string) error {
	return fmt.Errorf("line %d: unknown key %q %s (known keys: %s)", k.Line, k.Value, where, strings.Join(known, ", "))
}
