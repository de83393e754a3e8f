package faults

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxRuleBody bounds a POSTed rule or clock setting: a rule is a few hundred
// bytes.
const maxRuleBody = 64 << 10

// ParseRule reads one rule as the admin API receives it: a single JSON
// object of the faults.rules schema, no unknown members, nothing after it,
// and valid. Every problem names its field.
func ParseRule(data []byte) (Rule, error) {
	var r Rule
	if err := decodeStrict(data, &r, ruleFields); err != nil {
		return Rule{}, err
	}
	if err := r.Validate(); err != nil {
		return Rule{}, prefixed(fmt.Sprintf("rule %q", r.Name), err)
	}
	return r, nil
}

// The schemas, for the message about an unknown field.
const (
	ruleFields  = "a rule has name, match {interaction, from, to, method, path, nhs_number}, at, delay {fixed | uniform {min, max} | lognormal {median, sigma}}, status, code, reset, probability, times"
	clockFields = "the clock takes now or offset"
)

// decodeStrict decodes one JSON object into v, refusing unknown members and
// trailing data, and words decoding errors by field; fields is the schema,
// told to a user who sent an unknown member.
func decodeStrict(data []byte, v any, fields string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err, fields)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("body: one JSON object only, with nothing after it")
	}
	return nil
}

func jsonProblem(err error, fields string) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return fmt.Errorf("%s: want %s, got a JSON %s", field, jsonKind(typ.Type.String()), typ.Value)
	case errors.As(err, &syn):
		return fmt.Errorf("body: not JSON (offset %d): %v", syn.Offset, syn)
	case errors.Is(err, io.EOF):
		return errors.New("body: empty; send one JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("body: JSON ends too early")
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("%s: unknown field: %s", field, fields)
	}
	return fmt.Errorf("body: %v", err)
}

// jsonKind words a Go type as the JSON a user should send.
func jsonKind(goType string) string {
	switch {
	case strings.Contains(goType, "int"):
		return "a whole number"
	case strings.Contains(goType, "float"):
		return "a number"
	case strings.Contains(goType, "bool"):
		return "true or false"
	case strings.Contains(goType, "string"), strings.HasSuffix(goType, "At"):
		return "a string"
	}
	return "an object"
}

// NewAPI returns the admin API of faults and the clock:
//
//	GET    /api/faults         the rules in force, in order, with counts
//	POST   /api/faults         add one rule (JSON): 201; 400 naming the field; 409 for a name in use
//	GET    /api/faults/{name}  one rule, or 404
//	DELETE /api/faults/{name}  remove one rule: 200, or 404
//	DELETE /api/faults         remove every rule
//	GET    /api/clock          business time, real time and the offset
//	PUT    /api/clock          {"now": RFC 3339} or {"offset": "72h"}: 200; 400 for both or neither
//	DELETE /api/clock          back to real time
//
// A nil set or clock answers its paths with 404 saying it is not running.
// Answers are JSON; errors are {"error": ..., "problems": [...]}.
func NewAPI(set *Set, clock *Clock) http.Handler {
	a := &api{set: set, clock: clock}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/faults", a.list)
	mux.HandleFunc("POST /api/faults", a.add)
	mux.HandleFunc("DELETE /api/faults", a.clear)
	mux.HandleFunc("GET /api/faults/{name}", a.get)
	mux.HandleFunc("DELETE /api/faults/{name}", a.remove)
	mux.HandleFunc("GET /api/clock", a.clockGet)
	mux.HandleFunc("PUT /api/clock", a.clockPut)
	mux.HandleFunc("DELETE /api/clock", a.clockDelete)
	return mux
}

type api struct {
	set   *Set
	clock *Clock
}

func (a *api) faultsOff(w http.ResponseWriter) bool {
	if a.set == nil {
		writeError(w, http.StatusNotFound, errors.New("fault injection is not running here"))
		return true
	}
	return false
}

func (a *api) clockOff(w http.ResponseWriter) bool {
	if a.clock == nil {
		writeError(w, http.StatusNotFound, errors.New("the business clock is not running here (it belongs to the demonstrator: demonstrator.enabled)"))
		return true
	}
	return false
}

func (a *api) list(w http.ResponseWriter, _ *http.Request) {
	if a.faultsOff(w) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"header": a.set.HeaderEnabled(), "rules": a.set.List()})
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	if a.faultsOff(w) {
		return
	}
	name := r.PathValue("name")
	l, ok := a.set.Get(name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("rule %q: %w", name, ErrNotFound))
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (a *api) add(w http.ResponseWriter, r *http.Request) {
	if a.faultsOff(w) {
		return
	}
	data, err := readBody(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	rule, err := ParseRule(data)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	added, err := a.set.Add(rule)
	switch {
	case errors.Is(err, ErrDuplicate):
		writeError(w, http.StatusConflict, err)
		return
	case err != nil: // unreachable: ParseRule validated it
		writeError(w, http.StatusBadRequest, err)
		return
	}
	l, _ := a.set.Get(added.Name)
	w.Header().Set("Location", "/api/faults/"+added.Name)
	writeJSON(w, http.StatusCreated, l)
}

func (a *api) remove(w http.ResponseWriter, r *http.Request) {
	if a.faultsOff(w) {
		return
	}
	name := r.PathValue("name")
	if err := a.set.Remove(name); err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": []string{name}})
}

func (a *api) clear(w http.ResponseWriter, _ *http.Request) {
	if a.faultsOff(w) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": a.set.Clear()})
}

func (a *api) clockGet(w http.ResponseWriter, _ *http.Request) {
	if a.clockOff(w) {
		return
	}
	writeJSON(w, http.StatusOK, a.clock.State())
}

// ClockSetting is the body of PUT /api/clock: exactly one of Now (RFC 3339)
// and Offset (a Go duration, negative for the past).
type ClockSetting struct {
	Now    string `json:"now,omitempty"`
	Offset string `json:"offset,omitempty"`
}

// Apply sets c as s asks, or says what is wrong with s.
func (s ClockSetting) Apply(c *Clock) error {
	switch {
	case s.Now != "" && s.Offset != "":
		return errors.New("give now or offset, not both")
	case s.Now == "" && s.Offset == "":
		return errors.New(`give now (an RFC 3339 time, e.g. {"now": "2026-07-01T09:00:00+01:00"}) or offset (a Go duration, e.g. {"offset": "72h"}); DELETE /api/clock goes back to real time`)
	case s.Now != "":
		t, err := time.Parse(time.RFC3339Nano, s.Now)
		if err != nil {
			return fmt.Errorf("now: %q is not an RFC 3339 time such as 2026-07-01T09:00:00+01:00", s.Now)
		}
		return c.Set(t)
	}
	d, err := time.ParseDuration(s.Offset)
	if err != nil {
		return fmt.Errorf("offset: %q is not a Go duration such as 72h or -30m", s.Offset)
	}
	return c.SetOffset(d)
}

func (a *api) clockPut(w http.ResponseWriter, r *http.Request) {
	if a.clockOff(w) {
		return
	}
	data, err := readBody(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	var s ClockSetting
	if err := decodeStrict(data, &s, clockFields); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := s.Apply(a.clock); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, a.clock.State())
}

func (a *api) clockDelete(w http.ResponseWriter, _ *http.Request) {
	if a.clockOff(w) {
		return
	}
	a.clock.Reset()
	writeJSON(w, http.StatusOK, a.clock.State())
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRuleBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, fmt.Errorf("body: larger than %d bytes", maxRuleBody)
	}
	if err != nil {
		return nil, errors.New("body: could not be read")
	}
	return data, nil
}

// writeError answers {"error": all problems in one line, "problems": each}.
func writeError(w http.ResponseWriter, status int, err error) {
	var problems []string
	for _, e := range flatten(err) {
		problems = append(problems, e.Error())
	}
	writeJSON(w, status, map[string]any{"error": strings.Join(problems, "; "), "problems": problems})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
