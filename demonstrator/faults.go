package demonstrator

import (
	"context"
	"net/http"
	"strings"

	"sspemu/faults"
	"sspemu/gpconnect"
)

// ReasonHeader carries the plain-language reason of a fault, as the SSP's
// refusals carry theirs.
const ReasonHeader = gpconnect.ReasonHeader

// FaultHook is the Hook that lets the fault rules at: provider act at the
// practices: it matches the request against set and waits, answers the
// rule's status as the GP Connect OperationOutcome in the negotiated
// format, or closes the connection unanswered. The answer says which rules
// acted in Sspemu-Fault and how in Sspemu-Reason; the SSP copies the
// former into its transaction record and the practice's own audit record
// carries it too.
func FaultHook(set *faults.Set) Hook {
	return func(ctx context.Context, in Inbound) *gpconnect.Refusal {
		v := faults.View{
			Interaction: in.Interaction, From: in.From, To: in.To, Method: in.Method,
			Path: in.Path, Query: in.Query, Body: in.Body,
		}
		if set.NeedsBody(faults.AtProvider) && in.Patients != nil {
			v.Patients = in.Patients()
		}
		d, err := set.Match(faults.AtProvider, v, in.Header.Get(faults.Header))
		if err != nil {
			return &gpconnect.Refusal{Status: http.StatusBadRequest, Code: gpconnect.CodeBadRequest, Reason: err.Error()}
		}
		if d == nil {
			return nil
		}
		in.Answer.Set(faults.Header, d.Fault())
		in.Answer.Set(ReasonHeader, d.Reason())
		if err := faults.Sleep(ctx, d.Delay); err != nil {
			// The consumer (or the SSP's upstream timeout) gave up during
			// the delay: nobody reads the answer.
			return &gpconnect.Refusal{Drop: true, Reason: d.Reason() + "; the caller closed the connection during the delay"}
		}
		switch {
		case d.Status != nil:
			return d.Status.Refusal(faults.TokenValues{})
		case d.Reset:
			return &gpconnect.Refusal{Drop: true, Reason: d.Reason()}
		}
		return nil
	}
}

// patientsOf returns the NHS numbers of the patients a path below the
// service root names: /Patient/{id}[/...] by the patient's logical ID,
// /Appointment/{id} by the appointment's patient. Unknown IDs give none.
func (p *practice) patientsOf(rel string) []string {
	segs := strings.Split(strings.TrimPrefix(rel, "/"), "/")
	if len(segs) < 2 || segs[1] == "" {
		return nil
	}
	var out []string
	_ = p.store.View(func(tx Tx) error {
		patientID := ""
		switch segs[0] {
		case "Patient":
			patientID = segs[1]
		case "Appointment":
			if a, ok := tx.Appointment(segs[1]); ok {
				patientID = a.PatientID
			}
		}
		if pt, ok := tx.Patient(patientID); ok && pt.NHSNumber != "" {
			out = append(out, pt.NHSNumber)
		}
		return nil
	})
	return out
}
