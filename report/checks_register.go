package report

import (
	"fmt"
	"slices"
	"strings"

	"sspemu/audit"
)

// A registration defect is what one Register Patient error-handling test
// (GPC-FOU-REG-01/3 to /10, /12) puts in the body, read from the body
// summary of audit record version 4. Several defects share one error code
// (INVALID_RESOURCE), so the code alone cannot tell the tests apart; the
// summary can.
type defect struct {
	// desc completes "a register patient call whose body ...".
	desc  string
	holds func(p *audit.Body) bool
}

// patientOf is the Patient of a registration's registerPatient parameter
// (nil when the body had none, or could not be read).
func patientOf(b *audit.Body) *audit.BodyPatient {
	if b == nil {
		return nil
	}
	return b.Patient
}

func duplicate(xs []string, keep func(string) bool) bool {
	seen := map[string]bool{}
	for _, x := range xs {
		if !keep(x) {
			continue
		}
		if seen[x] {
			return true
		}
		seen[x] = true
	}
	return false
}

// phoneUses are the phone uses a registration may carry, one number each
// (Register a patient 1.2.7: never old); addressUses the address uses.
var (
	phoneUses   = []string{"home", "work", "mobile", "temp"}
	addressUses = []string{"home", "temp"}
)

var defects = map[string]defect{
	// The registration details (the registerPatient Patient) left blank:
	// no Patient, or one without any of the minimum details; or the
	// registrationDetails extension, which a consumer SHALL NOT populate.
	"blank-details": {"left the registration details blank (no registerPatient Patient, one with no NHS number, name or birth date) or sent the registrationDetails extension",
		func(b *audit.Body) bool {
			if b == nil || b.Error != "" || b.ResourceType != "Parameters" {
				return false
			}
			p := b.Patient
			return p == nil || p.RegistrationDetails || (p.NHSNumbers == 0 && p.Names == 0 && !p.BirthDate)
		}},
	"blank-nhs-number": {"had no NHS number identifier, or a blank one", func(b *audit.Body) bool {
		p := patientOf(b)
		return p != nil && (p.NHSNumbers == 0 || p.NHSNumber == "") && (p.Names > 0 || p.BirthDate)
	}},
	"blank-birth-date": {"had no birth date", func(b *audit.Body) bool {
		p := patientOf(b)
		return p != nil && !p.BirthDate && (p.NHSNumbers > 0 || p.Names > 0)
	}},
	"duplicate-phone-use": {"had two phone numbers with the same use", func(b *audit.Body) bool {
		p := patientOf(b)
		return p != nil && duplicate(p.TelecomUses, func(u string) bool { return strings.HasPrefix(u, "phone:") })
	}},
	"duplicate-address-use": {"had two addresses with the same use", func(b *audit.Body) bool {
		p := patientOf(b)
		return p != nil && duplicate(p.AddressUses, func(string) bool { return true })
	}},
	"address-use": {"had an address whose use is not temp or home (old, work, billing or none)", func(b *audit.Body) bool {
		p := patientOf(b)
		return p != nil && slices.ContainsFunc(p.AddressUses, func(u string) bool { return !slices.Contains(addressUses, u) })
	}},
	"phone-use": {"had a phone number whose use is not temp, home, work or mobile (old or none)", func(b *audit.Body) bool {
		p := patientOf(b)
		return p != nil && slices.ContainsFunc(p.TelecomUses, func(u string) bool {
			use, ok := strings.CutPrefix(u, "phone:")
			return ok && !slices.Contains(phoneUses, use)
		})
	}},
}

// numberStatus is GPC-FOU-REG-01/12's case: a body with no defect of its
// own and a number that passes the modulus 11 check, so a refusal of the
// number is about its status (superseded, not active), not its form.
var numberStatus = defect{"was well formed with an NHS number that passes the modulus 11 check", func(b *audit.Body) bool {
	p := patientOf(b)
	return p != nil && p.NHSNumbers == 1 && p.NHSNumberValid && len(bodyDefects(b)) == 0
}}

// defectNamed is the defect a catalogue row names.
func defectNamed(name string) (defect, bool) {
	if name == "nhs-number-status" {
		return numberStatus, true
	}
	d, ok := defects[name]
	return d, ok
}

// bodyDefects names the defects of a registration body, sorted.
func bodyDefects(b *audit.Body) []string {
	var out []string
	for name, d := range defects {
		if d.holds(b) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// checkRegistrationDefect decides a Register Patient error-handling test
// (Test.Defect): a registration whose body summary carries the test's
// defect, answered with the test's error and code, not sent again
// unchanged. Registrations recorded before audit record version 4 have
// no summary: when they are all there is, the result says so (as
// checkNotRecorded), never not met.
func checkRegistrationDefect(t Test, calls []*call) (string, string, []*call, []*call) {
	d, ok := defectNamed(t.Defect)
	if !ok {
		return NotExercised, fmt.Sprintf("no registration defect named %q (catalogue error)", t.Defect), nil, nil
	}
	res, why, ex, co := errorThenFixed(t, calls, func(c *call) bool {
		return c.rec.Interaction == iaRegister && v4(c) && d.holds(c.rec.Body)
	}, "a register patient call whose body "+d.desc)
	if res != NotExercised || len(ex) > 0 || len(co) > 0 {
		return res, why + " (read from the body's summary, audit record version 4)", ex, co
	}
	if old := filter(calls, func(c *call) bool { return c.rec.Interaction == iaRegister && !v4(c) }); len(old) > 0 {
		return checkNotRecorded(t, old)
	}
	return res, why, ex, co
}

// checkRegistrationOptional decides GPC-FOU-REG-01/4: a registration
// with an address and a telecom, answered with success.
func checkRegistrationOptional(t Test, calls []*call) (string, string, []*call, []*call) {
	reg := filter(calls, func(c *call) bool { return c.rec.Interaction == iaRegister })
	with := func(c *call) bool {
		p := patientOf(c.rec.Body)
		return v4(c) && p != nil && p.Addresses > 0 && p.Telecoms > 0
	}
	good := filter(reg, func(c *call) bool { return with(c) && c.ok() })
	tried := filter(reg, func(c *call) bool { return with(c) && !c.ok() })
	switch {
	case len(good) > 0:
		return Met, "a register patient call whose body had an address and a telecom was answered with success (read from the body's summary, audit record version 4)", good, nil
	case len(tried) > 0:
		return NotExercised, "register patient calls with an address and a telecom were made, but none was answered with success", nil, tried
	}
	if old := filter(reg, func(c *call) bool { return !v4(c) }); len(old) > 0 {
		return checkNotRecorded(t, old)
	}
	return NotExercised, "no register patient call whose body had an address and a telecom", nil, nil
}

// describeBody is the evidence line of a body summary.
func describeBody(b *audit.Body) string {
	if b == nil {
		return "body: none"
	}
	if b.Error != "" {
		return fmt.Sprintf("body (%s): %s", orDash(b.Format), b.Error)
	}
	out := fmt.Sprintf("body (%s): %s", b.Format, orDash(b.ResourceType))
	if len(b.Parameters) > 0 {
		out += " (parameters " + strings.Join(b.Parameters, ", ") + ")"
	}
	if p := b.Patient; p != nil {
		nhs := "no NHS number identifier"
		if p.NHSNumbers > 0 {
			valid := "fails the modulus 11 check"
			if p.NHSNumberValid {
				valid = "valid"
			}
			nhs = fmt.Sprintf("NHS number %s (%s", orDash(p.NHSNumber), valid)
			if p.NHSNumberStatus != "" {
				nhs += ", verification status " + p.NHSNumberStatus
			}
			nhs += ")"
			if p.NHSNumbers > 1 {
				nhs += fmt.Sprintf(", %d NHS number identifiers", p.NHSNumbers)
			}
		}
		out += fmt.Sprintf("; Patient: %s; %d name(s), %d official, family %s, given %s; gender %s; birth date %s; telecoms %s; addresses %s; registrationDetails %s",
			nhs, p.Names, p.Official, yesNo(p.Family), yesNo(p.Given), orDash(p.Gender), yesNo(p.BirthDate),
			uses(p.Telecoms, p.TelecomUses), uses(p.Addresses, p.AddressUses), yesNo(p.RegistrationDetails))
		if ds := bodyDefects(b); len(ds) > 0 {
			out += "; defects: " + strings.Join(ds, ", ")
		}
	}
	if a := b.Appointment; a != nil {
		out += fmt.Sprintf("; status %s, %d slot(s), participants %s, start %s, end %s, description %s, comment %s, cancellation reason %s",
			orDash(a.Status), a.Slots, uses(a.Participants, a.ParticipantKinds), yesNo(a.Start), yesNo(a.End),
			yesNo(a.Description), yesNo(a.Comment), yesNo(a.CancellationReason))
	}
	return out
}

func yesNo(b bool) string {
	if b {
		return "present"
	}
	return "absent"
}

func uses(n int, us []string) string {
	if n == 0 {
		return "none"
	}
	return fmt.Sprintf("%d (%s)", n, strings.Join(us, ", "))
}
