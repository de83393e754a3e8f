package report

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"sspemu/audit"
	"sspemu/spinecall"
)

// spineEntry is one entry of the Spine services journal (audit.SpineChain):
// a consumer's call to SDS or PDS, which the SSP itself never sees.
type spineEntry struct {
	seq  uint64
	call spinecall.Call
}

// journal is what the report read of the Spine services journal; nil when
// the audit directory has none (spine.enabled false, or an audit written
// before the journal existed).
type journal struct {
	entries []spineEntry // in chain order, within the report's time range
	all     int          // entries in the whole journal
}

// readJournal verifies and reads the journal in dir, keeping the entries
// in [since, until]. A journal that does not verify is refused, as the
// audit is, naming the broken entry.
func readJournal(dir string, since, until time.Time, rep *Report) (*journal, error) {
	files, err := audit.ChainFiles(dir, audit.SpineChain)
	if err != nil || len(files) == 0 {
		return nil, err
	}
	vr, err := audit.Verify(files...)
	if err != nil {
		return nil, err
	}
	if vr.First != nil {
		return nil, fmt.Errorf("%w: the Spine services journal: %s; no report is made from a tampered journal (sspemu audit verify %s shows the same)", ErrTampered, vr.First, dir)
	}
	if vr.TornTail != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("a crash cut the last line of %s short; it is not covered", vr.TornTail.File))
	}
	j := &journal{}
	err = eachLine(files, func(line []byte) error {
		e, err := parseJournalLine(line)
		if err != nil {
			return err
		}
		if e.call.Time.IsZero() {
			return nil // a notice line
		}
		j.all++
		if e.call.Time.Before(since) || (!until.IsZero() && e.call.Time.After(until)) {
			return nil
		}
		j.entries = append(j.entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return j, nil
}

// parseJournalLine reads one journal line: untrusted file content, fuzzed
// with the audit lines (FuzzParseJournalLine).
func parseJournalLine(line []byte) (spineEntry, error) {
	var l struct {
		Seq uint64 `json:"seq"`
		spinecall.Call
	}
	err := json.Unmarshal(line, &l)
	return spineEntry{seq: l.Seq, call: l.Call}, err
}

// succeeded reports an SDS call answered with success: HTTP 200, or an
// LDAP search done with success (result code 0).
func (e *spineEntry) succeeded() bool {
	c := &e.call
	switch c.Service {
	case spinecall.SDS:
		return c.Status == 200
	case spinecall.LDAP:
		return c.Method == "search" && c.Status == 0
	}
	return false
}

// filterHas reports whether an SDS call's filter has the equality
// attr=value (value "" for any value), without regard to case as LDAP
// compares these attributes.
func (e *spineEntry) filterHas(attr, value string) bool {
	f := strings.ToLower(strings.ReplaceAll(e.call.Filter, " ", ""))
	if value == "" {
		return strings.Contains(f, "("+strings.ToLower(attr)+"=")
	}
	return strings.Contains(f, "("+strings.ToLower(attr)+"="+strings.ToLower(value)+")")
}

// journalEvidence is a journal entry as evidence.
func journalEvidence(e *spineEntry, counter bool, extra ...string) Evidence {
	c := &e.call
	ev := Evidence{Seq: e.seq, TraceID: c.CorrelationID, Time: c.Time.UTC(), Status: c.Status, Counter: counter, Journal: true}
	if ev.TraceID == "" {
		ev.TraceID = c.RequestID
	}
	add := func(format string, args ...any) { ev.Checked = append(ev.Checked, fmt.Sprintf(format, args...)) }
	what := map[string]string{spinecall.SDS: "SDS FHIR", spinecall.LDAP: "SDS LDAP", spinecall.PDS: "PDS"}[c.Service]
	result := fmt.Sprintf("status %d", c.Status)
	if c.Result != "" {
		result = c.Result
	}
	add("Spine services journal entry %d: %s %s %s -> %s, %d result(s)", e.seq, what, c.Method, c.Request, result, c.Results)
	caller := c.Client
	if c.Listener != "" {
		caller += " on " + c.Listener
	}
	add("caller: %s", orDash(caller))
	if c.Filter != "" && c.Service == spinecall.SDS {
		add("directory filter: %s", c.Filter)
	}
	for _, d := range c.Directory {
		s := fmt.Sprintf("returned %s %s, ODS %s, party key %s", d.Class, d.ID, orDash(d.ODS), orDash(d.PartyKey))
		if d.Endpoint != "" {
			s += ", endpoint " + d.Endpoint + ", interaction " + d.Interaction
		}
		add("%s", s)
	}
	for _, p := range c.Patients {
		add("returned NHS number %s, GP practice %s%s%s", p.NHSNumber, orDash(p.GPODS), flag(p.Sensitive, ", sensitive"), flag(p.Deceased, ", deceased"))
	}
	if c.Code != "" {
		add("error code %s", c.Code)
	}
	ev.Checked = append(ev.Checked, extra...)
	return ev
}

func flag(b bool, s string) string {
	if b {
		return s
	}
	return ""
}

// noJournal says why SDS lookups cannot be shown.
const noJournal = "the audit directory holds no Spine services journal (spine-*.jsonl: sspemu's SDS and PDS were not running, or the audit predates the journal)"

// sdsCheck decides GPC-SPN-TST-01 (asid) or 02 (endpoint): an SDS lookup
// (LDAP or FHIR) with the test's filter that returned the ASID and party
// key (01) or an MHS endpoint (02), followed by a GP Connect call of the
// consumer, forwarded and answered with success, that used it: Ssp-To the
// ASID (01), or a target below the endpoint for its interaction (02). The
// journal does not say which consumer made a lookup (gldap does not name
// an LDAP connection's peer), so the link is the use that followed.
func sdsCheck(endpoint bool, j *journal, calls []*call) (result, why string, ev []Evidence) {
	ok := filter(calls, (*call).ok)
	if j == nil {
		if len(ok) == 0 {
			return NotExercised, noJournal + "; and no call was forwarded", nil
		}
		return NotExercised, fmt.Sprintf("%s; %d forwarded call(s) used an Ssp-To ASID and an endpoint that SDS registers (rules receiver and endpoint passed)", noJournal, len(ok)), nil
	}
	class, want := "nhsAs", "objectClass=nhsAs and nhsIDCode"
	if endpoint {
		class, want = "nhsMhs", "objectClass=nhsMhs and nhsMhsSvcIA"
	}
	type use struct {
		e *spineEntry
		d spinecall.DirectoryRecord
	}
	var lookups []use
	for i := range j.entries {
		e := &j.entries[i]
		if !e.succeeded() || !e.filterHas("objectClass", class) {
			continue
		}
		if (!endpoint && !e.filterHas("nhsIDCode", "")) || (endpoint && !e.filterHas("nhsMhsSvcIA", "")) {
			continue
		}
		for _, d := range e.call.Directory {
			if !strings.EqualFold(d.Class, class) || d.ID == "" || d.PartyKey == "" || (endpoint && d.Endpoint == "") {
				continue
			}
			lookups = append(lookups, use{e, d})
		}
	}
	if len(lookups) == 0 {
		return NotExercised, fmt.Sprintf("the Spine services journal (%d entries in range) holds no SDS lookup with %s that returned %s", len(j.entries), want,
			map[bool]string{false: "an ASID and party key", true: "an endpoint"}[endpoint]), nil
	}
	for _, u := range lookups {
		for _, c := range ok {
			if c.rec.Time.Before(u.e.call.Time) {
				continue
			}
			used := c.rec.To == u.d.ID
			how := fmt.Sprintf("GP Connect call seq %d (trace %s) then used Ssp-To %s, answered %d", c.seq, c.rec.TraceID, c.rec.To, c.status())
			if endpoint {
				used = c.rec.Interaction == u.d.Interaction && below(c.rec.Target, u.d.Endpoint)
				how = fmt.Sprintf("GP Connect call seq %d (trace %s) then used the endpoint for %s: %s %s, answered %d", c.seq, c.rec.TraceID, c.rec.Interaction, c.rec.Method, c.rec.Target, c.status())
			}
			if !used {
				continue
			}
			via := "LDAP"
			if u.e.call.Service == spinecall.SDS {
				via = "the SDS FHIR API"
			}
			if endpoint {
				why = "an SDS lookup over " + via + " for an MHS record (objectClass=nhsMhs, nhsMhsSvcIA) returned the endpoint URL, and a later GP Connect call for that interaction was sent below it and answered with success"
			} else {
				why = "an SDS lookup over " + via + " for an accredited system (objectClass=nhsAs, nhsIDCode) returned its ASID and party key, and a later GP Connect call to that ASID (Ssp-To) was answered with success"
			}
			return Met, why, []Evidence{journalEvidence(u.e, false, how), evidence(Test{Group: GroupSpine}, c, false)}
		}
	}
	for i, u := range lookups {
		if i == maxEvidence {
			break
		}
		ev = append(ev, journalEvidence(u.e, false))
	}
	return NotMet, fmt.Sprintf("%d SDS lookup(s) with %s were answered, but no later GP Connect call of this consumer used what they returned and was answered with success", len(lookups), want), ev
}

// below reports whether target is the endpoint or a path under it.
func below(target, endpoint string) bool {
	rest, ok := strings.CutPrefix(target, endpoint)
	return ok && (rest == "" || rest[0] == '/' || rest[0] == '?')
}
