package faults

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Header is the request header naming the rules to apply when faults.header
// is true: one name or several separated by commas.
const Header = "Sspemu-Fault"

// ErrDuplicate is returned by Add for a name already in the set; the admin
// API answers 409.
var ErrDuplicate = errors.New("a fault rule of that name already exists")

// ErrNotFound is returned by Remove for a name not in the set; the admin API
// answers 404.
var ErrNotFound = errors.New("no fault rule of that name")

// UnknownRuleError is Match's answer to an Sspemu-Fault header naming a rule
// that is not loaded. The caller answers 400 with Error() as the reason.
type UnknownRuleError struct {
	Names []string
}

func (e *UnknownRuleError) Error() string {
	quoted := make([]string, len(e.Names))
	for i, n := range e.Names {
		quoted[i] = strconv.Quote(n)
	}
	what := "fault rule %s, which is not loaded"
	if len(e.Names) > 1 {
		what = "fault rules %s, which are not loaded"
	}
	return fmt.Sprintf("the %s header names "+what+": GET /api/faults on the admin listener lists the rules, POST /api/faults adds one",
		Header, strings.Join(quoted, ", "))
}

// Metrics counts the faults that acted; the admin package implements it on
// Prometheus as ssp_faults_total{name,at}.
type Metrics interface {
	Fault(name string, at At)
}

type nopMetrics struct{}

func (nopMetrics) Fault(string, At) {}

// Options tunes a Set; the zero value is ready for production.
type Options struct {
	// Source drives probability and delay sampling. Nil means a source
	// seeded from crypto/rand; tests pass a seeded one (rand.NewPCG(1, 2))
	// to know every draw in advance.
	Source rand.Source
	// Metrics is told of every rule that acts; nil counts nothing.
	Metrics Metrics
}

// Set holds the fault rules in force, in order, and decides which act on a
// request. It is safe for concurrent use: Match reads an immutable snapshot
// without locking; Add, Remove, Clear and Load swap in a new one.
type Set struct {
	snap    atomic.Pointer[snapshot]
	writeMu sync.Mutex // serialises writers

	header atomic.Bool

	randMu sync.Mutex
	rand   *rand.Rand

	metrics Metrics
}

type snapshot struct {
	list   []*entry
	byName map[string]*entry
}

// entry is a rule in the set with its counters, which live as long as the
// rule does.
type entry struct {
	c *compiled
	// taken counts actions through matching, against times.
	taken atomic.Int64
	// acted counts every action, including those the header asked for.
	acted atomic.Int64
}

// NewSet builds a set from the faults: configuration; an invalid rule is an
// error naming it and its field.
func NewSet(cfg Config, opt Options) (*Set, error) {
	s := &Set{metrics: opt.Metrics}
	if s.metrics == nil {
		s.metrics = nopMetrics{}
	}
	src := opt.Source
	if src == nil {
		var seed [16]byte
		_, _ = crand.Read(seed[:]) // crypto/rand.Read never fails (Go 1.24+)
		src = rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))
	}
	s.rand = rand.New(src)
	s.snap.Store(&snapshot{byName: map[string]*entry{}})
	if err := s.Load(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Load replaces every rule and the header setting with cfg's, as a whole or
// not at all; counters start again from zero.
func (s *Set) Load(cfg Config) error {
	cs, err := compileAll(cfg.Rules)
	if err != nil {
		return err
	}
	next := &snapshot{byName: make(map[string]*entry, len(cs))}
	for _, c := range cs {
		e := &entry{c: c}
		next.list = append(next.list, e)
		next.byName[c.rule.Name] = e
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.snap.Store(next)
	s.header.Store(cfg.Header)
	return nil
}

// HeaderEnabled reports whether requests may name rules in Sspemu-Fault.
func (s *Set) HeaderEnabled() bool { return s.header.Load() }

// Add appends one rule, after those already in force. A rule that does not
// validate is an error naming its fields; a name in use is ErrDuplicate.
// It returns the rule as it will be listed (codes spelt canonically, a
// default code filled in).
func (s *Set) Add(r Rule) (Rule, error) {
	c, err := r.compile()
	if err != nil {
		return Rule{}, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	cur := s.snap.Load()
	if _, dup := cur.byName[r.Name]; dup {
		return Rule{}, fmt.Errorf("rule %q: %w: DELETE /api/faults/%s first to replace it", r.Name, ErrDuplicate, r.Name)
	}
	next := &snapshot{list: slices.Clone(cur.list), byName: make(map[string]*entry, len(cur.byName)+1)}
	for k, v := range cur.byName {
		next.byName[k] = v
	}
	e := &entry{c: c}
	next.list = append(next.list, e)
	next.byName[r.Name] = e
	s.snap.Store(next)
	return c.rule, nil
}

// Remove deletes the rule named name, or returns ErrNotFound.
func (s *Set) Remove(name string) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	cur := s.snap.Load()
	e, ok := cur.byName[name]
	if !ok {
		return fmt.Errorf("rule %q: %w", name, ErrNotFound)
	}
	next := &snapshot{byName: make(map[string]*entry, len(cur.byName))}
	for _, x := range cur.list {
		if x != e {
			next.list = append(next.list, x)
			next.byName[x.c.rule.Name] = x
		}
	}
	s.snap.Store(next)
	return nil
}

// Clear deletes every rule and returns how many there were.
func (s *Set) Clear() int {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	n := len(s.snap.Load().list)
	s.snap.Store(&snapshot{byName: map[string]*entry{}})
	return n
}

// Listed is a rule in force with how often it has acted, as GET /api/faults
// shows it.
type Listed struct {
	Rule
	// Acted counts the requests the rule acted on, by matching or by the
	// Sspemu-Fault header.
	Acted int64 `json:"acted"`
	// Remaining is what is left of times; absent when times is.
	Remaining *int64 `json:"remaining,omitempty"`
}

// List returns the rules in force, in the order they are tried.
func (s *Set) List() []Listed {
	cur := s.snap.Load()
	out := make([]Listed, 0, len(cur.list))
	for _, e := range cur.list {
		out = append(out, e.listed())
	}
	return out
}

// Get returns one rule in force by name.
func (s *Set) Get(name string) (Listed, bool) {
	e, ok := s.snap.Load().byName[name]
	if !ok {
		return Listed{}, false
	}
	return e.listed(), true
}

func (e *entry) listed() Listed {
	l := Listed{Rule: e.c.rule, Acted: e.acted.Load()}
	if e.c.times > 0 {
		left := max(e.c.times-e.taken.Load(), 0)
		l.Remaining = &left
	}
	return l
}

// NeedsBody reports whether a rule at at matches on an NHS number, so the
// caller must read the body into the View (PeekBody); otherwise a request
// body can stream through untouched.
func (s *Set) NeedsBody(at At) bool {
	for _, e := range s.snap.Load().list {
		if e.c.rule.At == at && e.c.rule.Match.NHSNumber != "" {
			return true
		}
	}
	return false
}

// Decision is what the rules decided for one request at one place. The
// caller waits Delay (Sleep), then, if Status is set, answers with it
// instead of forwarding or handling the request, or, if Reset is set,
// closes the connection unanswered (Reset); with neither it carries on as
// usual.
type Decision struct {
	At At
	// Rules names the rules that acted, in order; the audit's fault field
	// is Fault().
	Rules []string
	// Delay is the sum of the delays of the delay rules that acted,
	// sampled for this request, at most MaxDelay.
	Delay  time.Duration
	Status *Status
	Reset  bool
}

// Fault names the rules that acted, comma-separated, for the audit record.
func (d *Decision) Fault() string {
	if d == nil {
		return ""
	}
	return strings.Join(d.Rules, ",")
}

// Reason says in plain language what the faults did, for the Sspemu-Reason
// header and the audit.
func (d *Decision) Reason() string {
	if d == nil {
		return ""
	}
	if d.Status != nil {
		return d.Status.Reason()
	}
	where := "the SSP"
	if d.At == AtProvider {
		where = "the practice"
	}
	if d.Reset {
		return fmt.Sprintf("fault rule %q made %s close the connection unanswered (sspemu fault injection, not a real failure)", d.Rules[len(d.Rules)-1], where)
	}
	return fmt.Sprintf("fault rule %q delayed %s's answer by %s (sspemu fault injection)", d.Fault(), where, d.Delay)
}

// Match decides which rules act on the request v at at.
//
// Without an Sspemu-Fault header (header is its value, "" when absent), the
// rules are tried in order: a rule acts when its match fits v, then its
// probability draw succeeds, then its times allow one more. The delays of
// every delay rule that acts add up; the first status or reset rule that
// acts ends the search, so the rules after it are not tried (and their times
// not spent). It returns nil when no rule acts.
//
// When faults.header is true and header names rules, only those rules act,
// each at its own at, whatever their match, probability and times: the
// request asked for them. A name not loaded is an *UnknownRuleError, which
// the caller answers with 400. When faults.header is false the header is
// ignored.
func (s *Set) Match(at At, v View, header string) (*Decision, error) {
	cur := s.snap.Load()
	if header != "" && s.header.Load() {
		return s.named(cur, at, header)
	}
	var d *Decision
	var nhs []string
	nhsRead := false
	for _, e := range cur.list {
		c := e.c
		if c.rule.At != at || !c.fits(v, &nhs, &nhsRead) {
			continue
		}
		if c.probability < 1 && !s.draw(c.probability) {
			continue
		}
		if c.times > 0 && !e.take() {
			continue
		}
		d = s.act(d, at, e)
		if d.Status != nil || d.Reset {
			break
		}
	}
	return d, nil
}

func (s *Set) named(cur *snapshot, at At, header string) (*Decision, error) {
	var named []*entry
	var unknown []string
	for n := range strings.SplitSeq(header, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		e, ok := cur.byName[n]
		if !ok {
			if !slices.Contains(unknown, n) {
				unknown = append(unknown, n)
			}
			continue
		}
		if !slices.Contains(named, e) {
			named = append(named, e)
		}
	}
	if len(unknown) > 0 {
		return nil, &UnknownRuleError{Names: unknown}
	}
	var d *Decision
	for _, e := range named {
		if e.c.rule.At != at {
			continue
		}
		d = s.act(d, at, e)
		if d.Status != nil || d.Reset {
			break
		}
	}
	return d, nil
}

// act applies e's action to d, making d when it is the first.
func (s *Set) act(d *Decision, at At, e *entry) *Decision {
	if d == nil {
		d = &Decision{At: at}
	}
	c := e.c
	d.Rules = append(d.Rules, c.rule.Name)
	switch {
	case c.delay != nil:
		s.randMu.Lock()
		dl := c.delay(s.rand.Float64, s.rand.NormFloat64)
		s.randMu.Unlock()
		d.Delay = min(d.Delay+dl, MaxDelay)
	case c.status != 0:
		d.Status = &Status{Rule: c.rule.Name, At: at, Status: c.status, Code: c.code}
	case c.rule.Reset:
		d.Reset = true
	}
	e.acted.Add(1)
	s.metrics.Fault(c.rule.Name, at)
	return d
}

// take spends one of the rule's times, exactly: under any number of
// concurrent requests only the first times callers get true.
func (e *entry) take() bool {
	for {
		n := e.taken.Load()
		if n >= e.c.times {
			return false
		}
		if e.taken.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// draw reports whether one uniform draw falls below p.
func (s *Set) draw(p float64) bool {
	if p <= 0 {
		return false
	}
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return s.rand.Float64() < p
}

// fits reports whether v satisfies every field of the match. The NHS
// numbers of v are read once per Match, and only if a rule asks.
func (c *compiled) fits(v View, nhs *[]string, read *bool) bool {
	if c.interactions != nil && !slices.Contains(c.interactions, v.Interaction) {
		return false
	}
	m := c.rule.Match
	if m.From != "" && m.From != v.From {
		return false
	}
	if m.To != "" && m.To != v.To {
		return false
	}
	if c.method != "" && c.method != v.Method {
		return false
	}
	if c.path != nil && !c.path.MatchString(v.Path) {
		return false
	}
	if m.NHSNumber != "" {
		if !*read {
			*nhs, *read = v.NHSNumbers(), true
		}
		if !slices.Contains(*nhs, m.NHSNumber) {
			return false
		}
	}
	return true
}
