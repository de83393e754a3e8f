package faults

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sspemu/gpconnect"
)

// bookView is a booking request as the SSP sees it.
func bookView() View {
	return View{
		Interaction: gpconnect.CreateAppointment,
		From:        "200000000359",
		To:          "918999198993",
		Method:      "POST",
		Path:        "/Appointment",
		Body:        []byte(appointmentJSON),
	}
}

func newSet(t *testing.T, opt Options, rules ...Rule) *Set {
	t.Helper()
	s, err := NewSet(Config{Rules: rules}, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustMatch(t *testing.T, s *Set, at At, v View, header string) *Decision {
	t.Helper()
	d, err := s.Match(at, v, header)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestMatchFields(t *testing.T) {
	cases := []struct {
		name  string
		match Match
		fits  bool
	}{
		{"empty match fits all", Match{}, true},
		{"interaction URN", Match{Interaction: gpconnect.CreateAppointment}, true},
		{"other URN", Match{Interaction: gpconnect.SearchSlot}, false},
		{"group", Match{Interaction: "appointments"}, true},
		{"other group", Match{Interaction: "foundations"}, false},
		{"from", Match{From: "200000000359"}, true},
		{"other from", Match{From: "200000000360"}, false},
		{"to", Match{To: "918999198993"}, true},
		{"other to", Match{To: "918999198994"}, false},
		{"method, any case in the rule", Match{Method: "post"}, true},
		{"other method", Match{Method: "GET"}, false},
		{"path", Match{Path: `^/Appointment$`}, true},
		{"unanchored path", Match{Path: `Appoint`}, true},
		{"other path", Match{Path: `^/Slot`}, false},
		{"NHS number in the body", Match{NHSNumber: "9476719931"}, true},
		{"other NHS number", Match{NHSNumber: "9690937286"}, false},
		{"every field", Match{Interaction: "appointments", From: "200000000359", To: "918999198993", Method: "POST", Path: "/Appointment", NHSNumber: "9476719931"}, true},
		{"every field but one", Match{Interaction: "appointments", From: "200000000359", To: "918999198993", Method: "POST", Path: "/Appointment", NHSNumber: "9690937286"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSet(t, Options{}, Rule{Name: "r", At: AtSSP, Status: 502, Match: c.match})
			d := mustMatch(t, s, AtSSP, bookView(), "")
			if (d != nil) != c.fits {
				t.Fatalf("acted = %v, want %v", d != nil, c.fits)
			}
			if d != nil && (d.Status == nil || d.Status.Status != 502 || d.Fault() != "r") {
				t.Errorf("decision %+v", d)
			}
			if d := mustMatch(t, s, AtProvider, bookView(), ""); d != nil {
				t.Errorf("an at: ssp rule acted at the provider: %+v", d)
			}
		})
	}
}

// TestProbabilityExact replays the seeded source: the rule acts on exactly
// the requests whose draw falls below its probability.
func TestProbabilityExact(t *testing.T) {
	const n = 1000
	s := newSet(t, Options{Source: rand.NewPCG(1, 2)},
		Rule{Name: "always", At: AtSSP, Delay: &Delay{Fixed: "0s"}}, // p = 1 draws nothing
		Rule{Name: "quarter", At: AtSSP, Status: 502, Probability: ptr(0.25)})
	replay := rand.New(rand.NewPCG(1, 2))
	acted := 0
	for i := range n {
		want := replay.Float64() < 0.25
		d := mustMatch(t, s, AtSSP, bookView(), "")
		if got := d.Status != nil; got != want {
			t.Fatalf("request %d: acted = %v, want %v", i, got, want)
		}
		if want {
			acted++
		}
	}
	// With this seed, the share is what the rule asks for.
	if acted < 200 || acted > 300 {
		t.Errorf("acted on %d of %d at probability 0.25", acted, n)
	}
	l, _ := s.Get("quarter")
	if l.Acted != int64(acted) {
		t.Errorf("listed acted %d, want %d", l.Acted, acted)
	}
}

func TestProbabilityZeroNever(t *testing.T) {
	s := newSet(t, Options{Source: rand.NewPCG(1, 2)}, Rule{Name: "off", At: AtSSP, Status: 502, Probability: ptr(0.0)})
	for range 100 {
		if d := mustMatch(t, s, AtSSP, bookView(), ""); d != nil {
			t.Fatalf("probability 0 acted: %+v", d)
		}
	}
}

// TestProbabilityThenTimes: a draw that fails does not spend times, so the
// rule acts on the first times requests whose draw succeeds.
func TestProbabilityThenTimes(t *testing.T) {
	s := newSet(t, Options{Source: rand.NewPCG(7, 8)}, Rule{Name: "r", At: AtProvider, Status: 500, Probability: ptr(0.5), Times: ptr(3)})
	replay := rand.New(rand.NewPCG(7, 8))
	left := 3
	for i := range 50 {
		want := false
		if left > 0 {
			// Once times is spent the draw still happens (probability is
			// judged first), so the replay keeps drawing too.
			if replay.Float64() < 0.5 {
				want, left = true, left-1
			}
		} else {
			replay.Float64()
		}
		d := mustMatch(t, s, AtProvider, bookView(), "")
		if (d != nil) != want {
			t.Fatalf("request %d: acted = %v, want %v", i, d != nil, want)
		}
	}
	l, _ := s.Get("r")
	if l.Acted != 3 || l.Remaining == nil || *l.Remaining != 0 {
		t.Errorf("listed %+v", l)
	}
}

// TestTimesExactUnderConcurrency: many goroutines race for a rule with
// times 7; exactly 7 requests get the fault.
func TestTimesExactUnderConcurrency(t *testing.T) {
	const goroutines, each, times = 64, 50, 7
	s := newSet(t, Options{}, Rule{Name: "first-seven", At: AtSSP, Status: 502, Times: ptr(times)})
	var faulted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range goroutines {
		wg.Go(func() {
			<-start
			for range each {
				d, err := s.Match(AtSSP, bookView(), "")
				if err != nil {
					t.Error(err)
					return
				}
				if d != nil {
					faulted.Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if got := faulted.Load(); got != times {
		t.Errorf("%d requests faulted, want exactly %d", got, times)
	}
	l, _ := s.Get("first-seven")
	if l.Acted != times || *l.Remaining != 0 {
		t.Errorf("listed %+v", l)
	}
}

func TestFailFirstTwoThenSucceed(t *testing.T) {
	s := newSet(t, Options{}, Rule{Name: "fail-twice", At: AtProvider, Status: 500, Times: ptr(2)})
	var got []bool
	for range 5 {
		got = append(got, mustMatch(t, s, AtProvider, bookView(), "") != nil)
	}
	if want := []bool{true, true, false, false, false}; !slices.Equal(got, want) {
		t.Errorf("faulted %v, want %v", got, want)
	}
}

func TestDelaySampling(t *testing.T) {
	t.Run("fixed", func(t *testing.T) {
		s := newSet(t, Options{}, Rule{Name: "d", At: AtSSP, Delay: &Delay{Fixed: "2s"}})
		d := mustMatch(t, s, AtSSP, bookView(), "")
		if d.Delay != 2*time.Second || d.Status != nil || d.Reset {
			t.Errorf("decision %+v", d)
		}
	})
	t.Run("uniform", func(t *testing.T) {
		s := newSet(t, Options{Source: rand.NewPCG(3, 4)}, Rule{Name: "d", At: AtSSP, Delay: &Delay{Uniform: &Uniform{Min: "200ms", Max: "2s"}}})
		replay := rand.New(rand.NewPCG(3, 4))
		for i := range 200 {
			want := 200*time.Millisecond + time.Duration(replay.Float64()*float64(1800*time.Millisecond))
			d := mustMatch(t, s, AtSSP, bookView(), "")
			if d.Delay != want {
				t.Fatalf("draw %d: %s, want %s", i, d.Delay, want)
			}
			if d.Delay < 200*time.Millisecond || d.Delay > 2*time.Second {
				t.Fatalf("draw %d: %s outside [200ms, 2s]", i, d.Delay)
			}
		}
	})
	t.Run("lognormal", func(t *testing.T) {
		s := newSet(t, Options{Source: rand.NewPCG(5, 6)}, Rule{Name: "d", At: AtSSP, Delay: &Delay{Lognormal: &Lognormal{Median: "300ms", Sigma: 0.5}}})
		replay := rand.New(rand.NewPCG(5, 6))
		var below int
		const n = 1000
		for i := range n {
			want := time.Duration(float64(300*time.Millisecond) * math.Exp(0.5*replay.NormFloat64()))
			d := mustMatch(t, s, AtSSP, bookView(), "")
			if d.Delay != want {
				t.Fatalf("draw %d: %s, want %s", i, d.Delay, want)
			}
			if d.Delay < 300*time.Millisecond {
				below++
			}
		}
		// The median is the median: about half the draws fall below it.
		if below < 450 || below > 550 {
			t.Errorf("%d of %d draws below the median", below, n)
		}
	})
	t.Run("a long tail is cut at MaxDelay", func(t *testing.T) {
		s := newSet(t, Options{Source: rand.NewPCG(9, 9)}, Rule{Name: "d", At: AtSSP, Delay: &Delay{Lognormal: &Lognormal{Median: "10m", Sigma: 4}}})
		capped := 0
		for range 100 {
			d := mustMatch(t, s, AtSSP, bookView(), "")
			if d.Delay > MaxDelay {
				t.Fatalf("delay %s above MaxDelay", d.Delay)
			}
			if d.Delay == MaxDelay {
				capped++
			}
		}
		if capped == 0 {
			t.Error("no draw reached the cap")
		}
	})
}

// TestOrderDelaysAddTerminalEnds: delays add up; the first status or reset
// ends the search, and rules after it keep their times.
func TestOrderDelaysAddTerminalEnds(t *testing.T) {
	m := &recordMetrics{}
	s := newSet(t, Options{Metrics: m},
		Rule{Name: "slow", At: AtSSP, Delay: &Delay{Fixed: "1s"}},
		Rule{Name: "other-site", At: AtProvider, Delay: &Delay{Fixed: "5m"}},
		Rule{Name: "slower", At: AtSSP, Delay: &Delay{Fixed: "500ms"}},
		Rule{Name: "fail", At: AtSSP, Status: 502, Times: ptr(1)},
		Rule{Name: "later", At: AtSSP, Reset: true, Times: ptr(1)},
	)
	d := mustMatch(t, s, AtSSP, bookView(), "")
	if d.Delay != 1500*time.Millisecond || d.Status == nil || d.Reset || d.Fault() != "slow,slower,fail" {
		t.Fatalf("first decision %+v", d)
	}
	if l, _ := s.Get("later"); *l.Remaining != 1 {
		t.Errorf("a rule after the status spent its times: %+v", l)
	}
	d = mustMatch(t, s, AtSSP, bookView(), "")
	if !d.Reset || d.Status != nil || d.Fault() != "slow,slower,later" {
		t.Fatalf("second decision %+v", d)
	}
	d = mustMatch(t, s, AtSSP, bookView(), "")
	if d.Reset || d.Status != nil || d.Fault() != "slow,slower" {
		t.Fatalf("third decision %+v", d)
	}
	want := []string{"slow@ssp", "slower@ssp", "fail@ssp", "slow@ssp", "slower@ssp", "later@ssp", "slow@ssp", "slower@ssp"}
	if got := m.seen(); !slices.Equal(got, want) {
		t.Errorf("metrics saw %v, want %v", got, want)
	}
}

type recordMetrics struct {
	mu  sync.Mutex
	got []string
}

func (m *recordMetrics) Fault(name string, at At) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, name+"@"+string(at))
}

func (m *recordMetrics) seen() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.got)
}

func TestHeader(t *testing.T) {
	rules := []Rule{
		{Name: "ssp-502", At: AtSSP, Status: 502, Match: Match{Interaction: gpconnect.SearchSlot}, Probability: ptr(0.0)},
		{Name: "practice-500", At: AtProvider, Status: 500, Times: ptr(1)},
		{Name: "slow", At: AtSSP, Delay: &Delay{Fixed: "2s"}},
	}
	s, err := NewSet(Config{Header: true, Rules: rules}, Options{})
	if err != nil {
		t.Fatal(err)
	}

	// The named rule acts although its match does not fit and its
	// probability is 0; rules not named do not act.
	d := mustMatch(t, s, AtSSP, bookView(), "ssp-502")
	if d == nil || d.Fault() != "ssp-502" || d.Delay != 0 {
		t.Fatalf("named rule: %+v", d)
	}
	// A rule at the provider named at the SSP acts only at the provider,
	// and there whatever its times.
	if d := mustMatch(t, s, AtSSP, bookView(), "practice-500"); d != nil {
		t.Errorf("provider rule acted at the SSP: %+v", d)
	}
	for range 3 {
		if d := mustMatch(t, s, AtProvider, bookView(), "practice-500"); d == nil || d.Status.Code != gpconnect.CodeInternalServerError {
			t.Errorf("named provider rule: %+v", d)
		}
	}
	// Several names, spaces and repeats allowed.
	d = mustMatch(t, s, AtSSP, bookView(), " slow , ssp-502,slow")
	if d.Fault() != "slow,ssp-502" || d.Delay != 2*time.Second || d.Status == nil {
		t.Errorf("two names: %+v", d)
	}
	// Unknown names are an error naming them.
	_, err = s.Match(AtSSP, bookView(), "slow, nope, nada")
	var unknown *UnknownRuleError
	if !errors.As(err, &unknown) || !slices.Equal(unknown.Names, []string{"nope", "nada"}) {
		t.Fatalf("unknown names: %v", err)
	}
	want := `the Sspemu-Fault header names fault rules "nope", "nada", which are not loaded: GET /api/faults on the admin listener lists the rules, POST /api/faults adds one`
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}

	// With faults.header false the header is ignored: matching decides.
	off := newSet(t, Options{}, rules...)
	d = mustMatch(t, off, AtSSP, bookView(), "nope")
	if d == nil || d.Fault() != "slow" {
		t.Errorf("header off: %+v", d)
	}
}

func TestAddRemoveClearList(t *testing.T) {
	s := newSet(t, Options{}, Rule{Name: "a", At: AtSSP, Status: 502})
	added, err := s.Add(Rule{Name: "b", At: AtProvider, Status: 404, Code: "patient_not_found"})
	if err != nil {
		t.Fatal(err)
	}
	if added.Code != "PATIENT_NOT_FOUND" {
		t.Errorf("added %+v", added)
	}
	if _, err := s.Add(Rule{Name: "a", At: AtSSP, Reset: true}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := s.Add(Rule{Name: "c", At: AtSSP}); err == nil || errors.Is(err, ErrDuplicate) {
		t.Errorf("invalid: %v", err)
	}
	var names []string
	for _, l := range s.List() {
		names = append(names, l.Name)
	}
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("list %v", names)
	}
	if err := s.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove twice: %v", err)
	}
	if _, ok := s.Get("a"); ok {
		t.Error("removed rule still there")
	}
	if d := mustMatch(t, s, AtSSP, bookView(), ""); d != nil {
		t.Errorf("removed rule acted: %+v", d)
	}
	if n := s.Clear(); n != 1 || len(s.List()) != 0 {
		t.Errorf("clear removed %d, %d left", n, len(s.List()))
	}
}

func TestLoadIsAllOrNothing(t *testing.T) {
	s := newSet(t, Options{}, Rule{Name: "a", At: AtSSP, Status: 502})
	err := s.Load(Config{Header: true, Rules: []Rule{{Name: "b", At: AtSSP, Reset: true}, {Name: "c"}}})
	if err == nil {
		t.Fatal("invalid load accepted")
	}
	if l := s.List(); len(l) != 1 || l[0].Name != "a" || s.HeaderEnabled() {
		t.Errorf("a failed load changed the set: %+v", l)
	}
	if err := s.Load(Config{Header: true, Rules: []Rule{{Name: "b", At: AtSSP, Reset: true}}}); err != nil {
		t.Fatal(err)
	}
	if l := s.List(); len(l) != 1 || l[0].Name != "b" || !s.HeaderEnabled() {
		t.Errorf("load: %+v", l)
	}
}

func TestNeedsBody(t *testing.T) {
	s := newSet(t, Options{}, Rule{Name: "a", At: AtProvider, Status: 500, Match: Match{NHSNumber: "9690937286"}})
	if s.NeedsBody(AtSSP) || !s.NeedsBody(AtProvider) {
		t.Error("NeedsBody wrong")
	}
}

// TestConcurrentChanges runs matching against adds and removes, for the
// race detector.
func TestConcurrentChanges(t *testing.T) {
	s := newSet(t, Options{Source: rand.NewPCG(1, 1)})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Match(AtSSP, bookView(), ""); err != nil {
					t.Error(err)
					return
				}
				_ = s.List()
			}
		})
	}
	for i := range 200 {
		name := fmt.Sprintf("r%d", i%10)
		if _, err := s.Add(Rule{Name: name, At: AtSSP, Delay: &Delay{Uniform: &Uniform{Min: "0s", Max: "1s"}}, Probability: ptr(0.5), Times: ptr(3)}); err != nil && !errors.Is(err, ErrDuplicate) {
			t.Fatal(err)
		}
		if i%3 == 0 {
			_ = s.Remove(name)
		}
		if i%50 == 0 {
			s.Clear()
		}
	}
	close(stop)
	wg.Wait()
}

func TestDecisionReason(t *testing.T) {
	var none *Decision
	if none.Fault() != "" || none.Reason() != "" {
		t.Error("nil decision speaks")
	}
	d := &Decision{At: AtProvider, Rules: []string{"a", "b"}, Delay: 2 * time.Second}
	if got, want := d.Reason(), `fault rule "a,b" delayed the practice's answer by 2s (sspemu fault injection)`; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	d = &Decision{At: AtSSP, Rules: []string{"a", "drop"}, Reset: true}
	if got, want := d.Reason(), `fault rule "drop" made the SSP close the connection unanswered (sspemu fault injection, not a real failure)`; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
