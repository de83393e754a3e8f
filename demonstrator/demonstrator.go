// Package demonstrator holds sspemu's built-in GP Connect 1.2.7 practices
// (Foundations and Appointment Management), so that the SSP has real
// providers to forward to without any network beyond the machine.
//
// It has three layers. A Store keeps each practice's resources behind read
// and write transactions (MemoryStore by default). Handlers take a parsed
// request and return a resource or a GP Connect refusal; they never see
// HTTP. The edge (Handler) does everything HTTP: routing to a practice by
// its service root, content negotiation and the JSON ⇄ XML conversion,
// the provider's header and JWT checks, ETag and If-Match, Prefer,
// Location, and the practice's audit.
package demonstrator

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // the UK surgery times need Europe/London on hosts without zoneinfo

	"sspemu/gpconnect"
)

// Options are the runtime settings of one Demonstrator.
type Options struct {
	// Practices are the practices to serve. When empty, ASID and ODS (the
	// earlier one-practice form) make one practice with the built-in seed.
	Practices []Practice
	ASID, ODS string
	// BaseURL is the one-practice form's service root as consumers address
	// it, e.g. https://localhost:9443/A20047/STU3/1/gpconnect.
	BaseURL string
	// BaseURLs are the service roots by ODS code; they are written into
	// fullUrl, Location and the capability statement, and are the JWT's
	// expected aud. A practice missing here is
	// https://localhost:9443/<ODS>/STU3/1/gpconnect.
	BaseURLs map[string]string
	// Now is the real clock: JWT lifetimes and audit times. nil: time.Now.
	Now func() time.Time
	// Clock is the business clock: seed data, "in the past" rules, slot
	// windows, created and lastUpdated. nil: Now. The faults' controllable
	// clock plugs in here.
	Clock func() time.Time
	// JWTSkew is the clock tolerance handed to gpconnect.JWTPolicy.
	JWTSkew time.Duration
	// Audit is the practices' own audit; nil means none. With one, every
	// request gets exactly one record before it is answered; a request
	// whose record cannot be written is answered 500 and not acted on.
	Audit Auditor
	// NewStore makes a practice's store from its seed data; nil:
	// NewMemoryStore.
	NewStore func(Data) (Store, error)
	// Hook runs at the practice edge before each handler; nil: none.
	Hook Hook
	// Demographics is the Spine's PDS, which Register Patient asks before
	// it registers anyone: it returns the record PDS answers for an NHS
	// number, and false when PDS holds none. nil: no PDS, and Register
	// Patient checks only the practice's own records.
	Demographics func(nhs string) (PDSRecord, bool)
}

// Demonstrator serves a set of GP practices on one listener, each under its
// own service root. It is safe for concurrent use; a booking is atomic with
// respect to every other request at its practice.
type Demonstrator struct {
	practices []*practice // in configuration order
	byODS     map[string]*practice
	now       func() time.Time
	auditor   Auditor
	hook      Hook
}

// practice is one served practice: its identity, seed and store.
type practice struct {
	ods, asid, name string
	baseURL         string
	rootPath        string
	seed            *Seed
	store           Store
	clock           func() time.Time
	loc             *time.Location
	policy          gpconnect.JWTPolicy
	demographics    func(nhs string) (PDSRecord, bool)
	designated      designated // the seed's designated errors by NHS number
}

// New builds a Demonstrator with every practice's seed data computed from
// the business clock.
func New(opt Options) (*Demonstrator, error) {
	list := opt.Practices
	if len(list) == 0 {
		list = Config{ASID: opt.ASID, ODS: opt.ODS}.PracticeList()
		if opt.BaseURL != "" && len(list) == 1 {
			opt.BaseURLs = map[string]string{list[0].ODS: opt.BaseURL}
		}
	}
	if len(list) == 0 {
		return nil, errors.New("demonstrator: no practices: give Practices, or ASID and ODS")
	}
	if err := validatePractices(list); err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		return nil, fmt.Errorf("load time zone Europe/London: %w", err)
	}
	d := &Demonstrator{byODS: map[string]*practice{}, now: opt.Now, auditor: opt.Audit, hook: opt.Hook}
	if d.now == nil {
		d.now = time.Now
	}
	clock := opt.Clock
	if clock == nil {
		clock = d.now
	}
	newStore := opt.NewStore
	if newStore == nil {
		newStore = func(data Data) (Store, error) { return NewMemoryStore(data), nil }
	}
	for _, cfg := range list {
		p := &practice{
			ods:      cfg.ODS,
			asid:     cfg.ASID,
			name:     cfg.Name,
			baseURL:  strings.TrimSuffix(opt.BaseURLs[cfg.ODS], "/"),
			rootPath: ServiceRootPath(cfg.ODS),
			seed:     cfg.seed(),
			clock:    clock,
			loc:      loc,
			policy:   gpconnect.JWTPolicy{Skew: opt.JWTSkew},

			demographics: opt.Demographics,
		}
		p.designated = designatedOf(p.seed)
		if p.baseURL == "" {
			p.baseURL = "https://localhost:9443" + p.rootPath
		}
		if p.store, err = newStore(p.seed.build(clock(), loc)); err != nil {
			return nil, fmt.Errorf("%s: store: %w", practiceLabel(len(d.practices), cfg), err)
		}
		d.practices = append(d.practices, p)
		d.byODS[p.ods] = p
	}
	return d, nil
}

// PracticeInfo is what the rest of sspemu may know of a served practice.
type PracticeInfo struct {
	ODS, ASID, Name string
	// BaseURL is its service root as consumers address it.
	BaseURL string
}

// Practices lists the served practices in configuration order.
func (d *Demonstrator) Practices() []PracticeInfo {
	out := make([]PracticeInfo, 0, len(d.practices))
	for _, p := range d.practices {
		out = append(out, PracticeInfo{ODS: p.ods, ASID: p.asid, Name: p.name, BaseURL: p.baseURL})
	}
	return out
}

// RegisteredPatient is a patient as a practice holds them, with the
// practice's ODS code: what the Spine's PDS answers about the practices'
// patients (its generalPractitioner is PracticeODS).
type RegisteredPatient struct {
	PracticeODS string
	Patient
}

// Patients lists every practice's registered patients, practices in
// configuration order and patients in order of logical ID, as they are now
// (registrations included).
func (d *Demonstrator) Patients() ([]RegisteredPatient, error) {
	var out []RegisteredPatient
	for _, p := range d.practices {
		err := p.store.View(func(tx Tx) error {
			for _, pt := range tx.Patients() {
				out = append(out, RegisteredPatient{PracticeODS: p.ods, Patient: pt})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("practice %s: %w", p.ods, err)
		}
	}
	return out, nil
}

// Reset restores every practice's seed data, recomputed from the business
// clock, so that a test run can start from a known appointment book.
func (d *Demonstrator) Reset() error {
	for _, p := range d.practices {
		if err := p.reset(); err != nil {
			return err
		}
	}
	return nil
}

// ResetPractice restores one practice's seed data; an ODS code that is not
// served is an error naming the ones that are.
func (d *Demonstrator) ResetPractice(ods string) error {
	p, ok := d.byODS[ods]
	if !ok {
		var known []string
		for k := range d.byODS {
			known = append(known, k)
		}
		sort.Strings(known)
		return fmt.Errorf("no practice with ODS code %q (served: %s)", ods, strings.Join(known, ", "))
	}
	return p.reset()
}

func (p *practice) reset() error {
	if err := p.store.Reset(p.seed.build(p.clock(), p.loc)); err != nil {
		return fmt.Errorf("practice %s: reset: %w", p.ods, err)
	}
	return nil
}

// practiceOf finds the practice whose service root holds path, and the
// path below that root.
func (d *Demonstrator) practiceOf(path string) (*practice, string, bool) {
	ods, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	p, ok := d.byODS[ods]
	if !ok || !strings.HasPrefix(path, p.rootPath+"/") {
		return nil, "", false
	}
	return p, path[len(p.rootPath):], true
}

// roots lists the service root paths, for a 404's diagnostics.
func (d *Demonstrator) roots() string {
	var out []string
	for _, p := range d.practices {
		out = append(out, p.rootPath)
	}
	return strings.Join(out, ", ")
}

// refuse is a practice's refusal: the GP Connect provider shape, with the
// diagnostics formatted from format and args.
func refuse(status int, code, format string, args ...any) *gpconnect.Refusal {
	return gpconnect.Refuse(status, code, format, args...)
}

func badRequest(format string, args ...any) *gpconnect.Refusal {
	return refuse(http.StatusBadRequest, gpconnect.CodeBadRequest, format, args...)
}

func invalidParameter(format string, args ...any) *gpconnect.Refusal {
	return refuse(http.StatusUnprocessableEntity, gpconnect.CodeInvalidParameter, format, args...)
}

func invalidResource(format string, args ...any) *gpconnect.Refusal {
	return refuse(http.StatusUnprocessableEntity, gpconnect.CodeInvalidResource, format, args...)
}

// reply is a handler's answer: a resource and what the edge turns into
// headers.
type reply struct {
	status  int
	body    any    // the resource; nil: no body
	version string // ETag W/"<version>"; empty: none
	created string // "Appointment/7": Location <root>/Appointment/7/_history/<version>
	// minimal allows Prefer: return=minimal to leave the body out (a
	// create or an update).
	minimal bool
}

// request is one call as a handler sees it: parsed, checked, its body in
// JSON whatever the wire format, nothing of HTTP.
type request struct {
	in     gpconnect.Interaction
	rel    string // path below the service root
	params []queryParam
	body   []byte    // JSON; nil on GET
	now    time.Time // business time
	// ifMatch is the version If-Match names ("" when not sent), and
	// ifMatchRaw the header as sent, for diagnostics.
	ifMatch, ifMatchRaw string
	// commit records a change's answer in the practice's audit; a handler
	// calls it inside the Update that makes the change, last, and returns
	// its error so that a change is never kept without its record.
	commit func(rep *reply, note string) error
}
