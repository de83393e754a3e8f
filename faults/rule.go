// Package faults is sspemu's fault and latency injection and its
// controllable clock: rules that make the SSP or a practice answer an error,
// slow down or drop the connection, matched against a view of the request,
// so a consumer's CI can test its error handling; and the business clock the
// practices read, so it can test both UK seasons.
package faults

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"sspemu/gpconnect"
)

// At says where a rule acts: at the SSP (which then answers instead of
// forwarding) or at a practice (which answers instead of the resource).
type At string

// The two places a fault can act.
const (
	AtSSP      At = "ssp"
	AtProvider At = "provider"
)

// MaxDelay bounds every delay, configured or sampled: a consumer's CI should
// see a slow answer, not a hung test run; a lognormal tail is cut here.
const MaxDelay = 10 * time.Minute

// maxSigma bounds the lognormal's sigma: at 4 the 99th percentile is already
// more than 10 000 times the median.
const maxSigma = 4.0

// Rule is one fault: which requests it matches, where it acts and what it
// does. The same schema is read from faults.rules in the configuration
// (mapstructure) and from POST /api/faults (JSON). Durations are Go duration
// strings ("150ms", "2s") kept as written, so the rule reads back as it was
// given; Validate parses them.
type Rule struct {
	Name  string `mapstructure:"name" json:"name"`
	Match Match  `mapstructure:"match" json:"match,omitzero"`
	At    At     `mapstructure:"at" json:"at"`

	// Exactly one action: Delay, Status (with Code), or Reset.
	Delay  *Delay `mapstructure:"delay" json:"delay,omitempty"`
	Status int    `mapstructure:"status" json:"status,omitempty"`
	Code   string `mapstructure:"code" json:"code,omitempty"`
	Reset  bool   `mapstructure:"reset" json:"reset,omitempty"`

	// Probability is the share of matching requests the rule acts on (0 to
	// 1); absent means every one.
	Probability *float64 `mapstructure:"probability" json:"probability,omitempty"`
	// Times limits the rule to its first Times actions; absent means no limit.
	Times *int `mapstructure:"times" json:"times,omitempty"`
}

// Match selects requests; every field given must fit, and an empty Match
// fits every request.
type Match struct {
	// Interaction is a full interaction URN or one of the groups
	// foundations, appointments, structured.
	Interaction string `mapstructure:"interaction" json:"interaction,omitempty"`
	From        string `mapstructure:"from" json:"from,omitempty"` // Ssp-From ASID
	To          string `mapstructure:"to" json:"to,omitempty"`     // Ssp-To ASID
	Method      string `mapstructure:"method" json:"method,omitempty"`
	// Path is a Go regular expression tried against the path below the
	// service root (e.g. "/Patient/2"); anchor it with ^ and $ for a whole
	// match.
	Path string `mapstructure:"path" json:"path,omitempty"`
	// NHSNumber matches requests about this patient (see View.NHSNumbers).
	NHSNumber string `mapstructure:"nhs_number" json:"nhs_number,omitempty"`
}

// Delay is the delay action: exactly one of Fixed, Uniform and Lognormal.
type Delay struct {
	Fixed     string     `mapstructure:"fixed" json:"fixed,omitempty"`
	Uniform   *Uniform   `mapstructure:"uniform" json:"uniform,omitempty"`
	Lognormal *Lognormal `mapstructure:"lognormal" json:"lognormal,omitempty"`
}

// Uniform draws a delay evenly between Min and Max.
type Uniform struct {
	Min string `mapstructure:"min" json:"min"`
	Max string `mapstructure:"max" json:"max"`
}

// Lognormal draws a delay whose median is Median and whose logarithm has
// standard deviation Sigma: the long right tail of real service latency.
type Lognormal struct {
	Median string  `mapstructure:"median" json:"median"`
	Sigma  float64 `mapstructure:"sigma" json:"sigma"`
}

// Config is the faults: section of config.yaml.
type Config struct {
	// Header lets a request name the rule to apply in the Sspemu-Fault
	// header.
	Header bool   `mapstructure:"header" json:"header"`
	Rules  []Rule `mapstructure:"rules" json:"rules"`
}

// Validate reports every problem of the section at once, each naming the
// rule by index and name and the field (faults.rules[2] "slow-slots":
// delay.uniform.max: ...), including names used twice.
func (c Config) Validate() error {
	_, err := compileAll(c.Rules)
	return err
}

func compileAll(rules []Rule) ([]*compiled, error) {
	var errs []error
	out := make([]*compiled, 0, len(rules))
	first := map[string]int{}
	for i, r := range rules {
		where := fmt.Sprintf("faults.rules[%d] %q", i, r.Name)
		c, err := r.compile()
		if err != nil {
			errs = append(errs, prefixed(where, err))
		}
		if r.Name != "" {
			if j, dup := first[r.Name]; dup {
				errs = append(errs, fmt.Errorf("%s: name: already used by faults.rules[%d]; names must be unique", where, j))
			} else {
				first[r.Name] = i
			}
		}
		out = append(out, c)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// prefixed puts where in front of each joined problem of err, so every line
// of the message names its rule.
func prefixed(where string, err error) error {
	var errs []error
	for _, e := range flatten(err) {
		errs = append(errs, fmt.Errorf("%s: %w", where, e))
	}
	return errors.Join(errs...)
}

// flatten lists the single problems of an errors.Join tree, in order.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}

// Validate reports every problem of one rule at once, each naming its field
// (delay.uniform.max: must be ≥ min); the caller adds which rule it is.
func (r Rule) Validate() error {
	_, err := r.compile()
	return err
}

// namePattern keeps names usable in a URL path segment, an HTTP header list
// and a metrics label.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// compiled is a validated rule in the form Match uses.
type compiled struct {
	rule         Rule
	interactions []string // expanded URNs; nil: any
	method       string
	path         *regexp.Regexp
	delay        sampler
	status       int
	code         string // canonical
	probability  float64
	times        int64 // 0: no limit
}

// compile validates r and builds its matcher, collecting every problem.
func (r Rule) compile() (*compiled, error) {
	c := &compiled{rule: r, probability: 1}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}

	switch {
	case r.Name == "":
		bad("name", "missing: every rule needs a name (letters, digits, '.', '_', '-'), used by the admin API, the Sspemu-Fault header, the audit and metrics")
	case !namePattern.MatchString(r.Name):
		bad("name", "%q must be 1 to 64 of letters, digits, '.', '_' and '-', starting with a letter or digit", r.Name)
	}

	m := r.Match
	if m.Interaction != "" {
		ids, err := gpconnect.Expand([]string{m.Interaction})
		if err != nil {
			bad("match.interaction", "%v", err)
		}
		c.interactions = ids
	}
	for _, f := range [][2]string{{"match.from", m.From}, {"match.to", m.To}} {
		if f[1] != "" && !isDigits(f[1], 12) {
			bad(f[0], "%q is not an ASID: 12 digits, as in the Ssp-From and Ssp-To headers", f[1])
		}
	}
	if m.Method != "" {
		c.method = strings.ToUpper(m.Method)
		if !slices.Contains([]string{"GET", "POST", "PUT"}, c.method) {
			bad("match.method", "%q is not GET, POST or PUT, the verbs GP Connect uses", m.Method)
		}
	}
	if m.Path != "" {
		re, err := regexp.Compile(m.Path)
		if err != nil {
			bad("match.path", "not a Go regular expression: %v", err)
		}
		c.path = re
	}
	if m.NHSNumber != "" && !isDigits(m.NHSNumber, 10) {
		bad("match.nhs_number", "%q is not an NHS number: 10 digits, no spaces", m.NHSNumber)
	}

	switch r.At {
	case AtSSP, AtProvider:
	case "":
		bad("at", "missing: ssp (the SSP answers instead of forwarding) or provider (the practice answers)")
	default:
		bad("at", "%q is not ssp or provider", r.At)
	}

	actions := 0
	if r.Delay != nil {
		actions++
		s, err := r.Delay.sampler()
		errs = append(errs, flatten(err)...)
		c.delay = s
	}
	if r.Status != 0 {
		actions++
		code, err := statusCode(r.At, r.Status, r.Code)
		if err != nil {
			errs = append(errs, err)
		}
		c.status, c.code = r.Status, code
	} else if r.Code != "" {
		bad("code", "%q given without status: set status to the HTTP status it belongs to", r.Code)
	}
	if r.Reset {
		actions++
	}
	switch {
	case actions == 0:
		bad("action", "missing: give exactly one of delay, status (with code) or reset")
	case actions > 1:
		bad("action", "more than one of delay, status and reset: a rule does one thing; write one rule per action")
	}

	if p := r.Probability; p != nil {
		if math.IsNaN(*p) || *p < 0 || *p > 1 {
			bad("probability", "%v is not between 0 and 1 (0.25 acts on a quarter of matching requests)", *p)
		}
		c.probability = *p
	}
	if t := r.Times; t != nil {
		if *t < 1 {
			bad("times", "%d must be at least 1 (leave times out to act on every match)", *t)
		}
		c.times = int64(*t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c.rule.Code = c.code
	if c.method != "" {
		c.rule.Match.Method = c.method
	}
	return c, nil
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// sampler draws one delay from a uniform [0,1) and a standard normal source.
type sampler func(uniform func() float64, normal func() float64) time.Duration

func (d Delay) sampler() (sampler, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	n := 0
	var s sampler
	if d.Fixed != "" {
		n++
		v, err := parseDelay(d.Fixed)
		if err != nil {
			bad("delay.fixed", "%v", err)
		}
		s = func(func() float64, func() float64) time.Duration { return v }
	}
	if u := d.Uniform; u != nil {
		n++
		lo, err1 := parseDelay(u.Min)
		if err1 != nil {
			bad("delay.uniform.min", "%v", err1)
		}
		hi, err2 := parseDelay(u.Max)
		if err2 != nil {
			bad("delay.uniform.max", "%v", err2)
		}
		if err1 == nil && err2 == nil && hi < lo {
			bad("delay.uniform.max", "must be ≥ min (%s < %s)", u.Max, u.Min)
		}
		s = func(uniform, _ func() float64) time.Duration {
			return lo + time.Duration(uniform()*float64(hi-lo))
		}
	}
	if l := d.Lognormal; l != nil {
		n++
		med, err := parseDelay(l.Median)
		if err != nil {
			bad("delay.lognormal.median", "%v", err)
		}
		sigma := l.Sigma
		if math.IsNaN(sigma) || sigma < 0 || sigma > maxSigma {
			bad("delay.lognormal.sigma", "%v must be between 0 and %v (0.5 is a moderate spread)", sigma, maxSigma)
		}
		s = func(_, normal func() float64) time.Duration {
			v := float64(med) * math.Exp(sigma*normal())
			if v >= float64(MaxDelay) {
				return MaxDelay
			}
			return time.Duration(v)
		}
	}
	switch {
	case n == 0:
		bad("delay", "give one of fixed, uniform (min, max) or lognormal (median, sigma)")
	case n > 1:
		bad("delay", "give only one of fixed, uniform and lognormal")
	}
	return s, errors.Join(errs...)
}

// parseDelay reads a Go duration between 0 and MaxDelay.
func parseDelay(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("missing: a Go duration such as 150ms or 2s")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a Go duration such as 150ms or 2s", s)
	}
	if d < 0 || d > MaxDelay {
		return 0, fmt.Errorf("%s is not between 0 and %s", s, MaxDelay)
	}
	return d, nil
}
