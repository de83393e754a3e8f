package demonstrator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"sspemu/faults"
	"sspemu/gpconnect"
)

// DesignatedFault is the Sspemu-Fault name, in the answer and in the
// practice's audit, of an error a designated patient carries.
const DesignatedFault = "designated-patient"

// SeedError is the GP Connect error a designated patient carries, as the
// NHS demonstrator keeps patients that always answer one error: every
// request at the practice that names the patient (a search by their NHS
// number, a read of their Patient, their appointments, a booking for them,
// a read, amend or cancel of one of their appointments) is answered with
// it. It is part of the seed, not a fault rule, so DELETE /api/faults
// leaves it in place and a consumer's CI can rely on it.
type SeedError struct {
	// Status and Code are a GP Connect provider pair
	// (Spine-ErrorOrWarningCode-1), e.g. 403 NO_PATIENT_CONSENT.
	Status int    `mapstructure:"status"`
	Code   string `mapstructure:"code"`
	// On limits the error to these interactions (full URNs or the groups
	// foundations and appointments); empty: every interaction.
	On []string `mapstructure:"on"`
}

// validate names what is wrong with e.
func (e *SeedError) validate() []error {
	var errs []error
	if st := gpconnect.ProviderStatus(e.Code); st == 0 {
		errs = append(errs, fmt.Errorf("error code %q is not a GP Connect provider error code (Spine-ErrorOrWarningCode-1, e.g. NO_PATIENT_CONSENT)", e.Code))
	} else if st != e.Status {
		errs = append(errs, fmt.Errorf("error status %d does not go with code %s, which GP Connect answers with %d", e.Status, e.Code, st))
	}
	if len(e.On) > 0 {
		if _, err := gpconnect.Expand(e.On); err != nil {
			errs = append(errs, fmt.Errorf("error on: %v", err))
		}
	}
	return errs
}

// designated is a practice's designated errors by NHS number, each with
// the interactions it acts on (nil: all).
type designated map[string]designatedError

type designatedError struct {
	status int
	code   string
	on     []string
}

func designatedOf(s *Seed) designated {
	out := designated{}
	for _, p := range s.Patients {
		if p.Error == nil {
			continue
		}
		var on []string
		if len(p.Error.On) > 0 {
			on, _ = gpconnect.Expand(p.Error.On) // validated before
		}
		out[p.NHSNumber] = designatedError{status: p.Error.Status, code: p.Error.Code, on: on}
	}
	return out
}

// designatedRefusal is the designated error of the first patient rq names
// that carries one for rq's interaction, with the Sspemu-Fault and reason
// headers set on answer; nil when there is none.
func (p *practice) designatedRefusal(rq *request, answer http.Header) *gpconnect.Refusal {
	if len(p.designated) == 0 {
		return nil
	}
	for _, nhs := range p.patientsNamed(rq) {
		e, ok := p.designated[nhs]
		if !ok || (e.on != nil && !slices.Contains(e.on, rq.in.ID)) {
			continue
		}
		reason := fmt.Sprintf("patient %s is designated to answer %d %s at practice %s", nhs, e.status, e.code, p.ods)
		if prev := answer.Get(faults.Header); prev != "" {
			answer.Set(faults.Header, prev+", "+DesignatedFault)
		} else {
			answer.Set(faults.Header, DesignatedFault)
		}
		answer.Set(ReasonHeader, reason)
		return refuse(e.status, e.code, "%s", reason)
	}
	return nil
}

// patientsNamed returns the NHS numbers of the patients a request names:
// by its path (patientsOf), by the NHS number a patient search asks for,
// and by the Patient references among a body's participants (a booking,
// an amend or a cancel).
func (p *practice) patientsNamed(rq *request) []string {
	out := p.patientsOf(rq.rel)
	if rq.in.ID == gpconnect.SearchPatient {
		for _, q := range rq.params {
			if q.name != "identifier" {
				continue
			}
			if sys, val, ok := strings.Cut(q.value, "|"); ok && sys == systemNHSNumber {
				out = append(out, val)
			}
		}
	}
	if len(rq.body) > 0 {
		var body struct {
			Participant []struct {
				Actor struct {
					Reference string `json:"reference"`
				} `json:"actor"`
			} `json:"participant"`
		}
		if json.Unmarshal(rq.body, &body) == nil {
			for _, pa := range body.Participant {
				if id, ok := strings.CutPrefix(pa.Actor.Reference, "Patient/"); ok && id != "" && !strings.Contains(id, "/") {
					out = append(out, p.patientsOf("/Patient/"+id)...)
				}
			}
		}
	}
	return out
}

// designatedByID is the designated error of the patient with logical ID
// id at practice ods, if they carry one for every interaction.
func (d *Demonstrator) designatedByID(ods, id string) (designatedError, bool) {
	p, ok := d.byODS[ods]
	if !ok {
		return designatedError{}, false
	}
	for _, nhs := range p.patientsOf("/Patient/" + id) {
		if e, ok := p.designated[nhs]; ok && e.on == nil {
			return e, true
		}
	}
	return designatedError{}, false
}
