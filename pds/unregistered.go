package pds

import (
	"fmt"
	"strconv"
)

// UnregisteredCount is how many test patients PDS holds who are registered
// at no practice: the people a consumer registers with Register Patient
// (GP Connect's temporary registration). The provider conformance suite
// registers about 45 patients per run, so a run at each practice, in JSON
// and in XML, finds fresh ones; a reset of the practices frees them all.
const UnregisteredCount = 200

// unregisteredFirst is the first nine digits of the first unregistered
// patient's NHS number; the others follow, skipping the numbers the
// modulus-11 check cannot complete.
const unregisteredFirst = 999000100

// Unregistered lists PDS's unregistered test patients in order of NHS
// number (9990001006 onwards): living, unrestricted, each with a home
// address and a phone number, and no registered practice.
func Unregistered() []Patient {
	families := []string{"ABBOTT", "BRADLEY", "CARVER", "DENHOLM", "ELLERY", "FAIRLIE", "GARSIDE", "HALLAM", "IRVING", "JESSOP",
		"KEIGHLEY", "LOFTHOUSE", "MARSDEN", "NETTLETON", "OLDROYD", "PICKERSGILL", "QUARMBY", "RHODES", "SUTCLIFFE", "THEAKSTON"}
	givens := [][2]string{{"Amelia", "female"}, {"Ben", "male"}, {"Chloe", "female"}, {"Daniel", "male"}, {"Erin", "female"},
		{"Felix", "male"}, {"Georgia", "female"}, {"Harvey", "male"}, {"Isla", "female"}, {"Jack", "male"}}
	out := make([]Patient, 0, UnregisteredCount)
	for prefix := unregisteredFirst; len(out) < UnregisteredCount; prefix++ {
		nhs, ok := withCheckDigit(prefix)
		if !ok {
			continue
		}
		i := len(out)
		g := givens[i%len(givens)]
		out = append(out, Patient{
			NHSNumber: nhs, Family: families[i/len(givens)%len(families)], Given: []string{g[0]}, Gender: g[1],
			BirthDate: fmt.Sprintf("%04d-%02d-%02d", 1940+i%70, 1+i%12, 1+i%28),
			Address:   &Address{Lines: []string{strconv.Itoa(1+i) + " Wellington Street", "Leeds"}, PostalCode: "LS1 4DL"},
			Telecom:   []Telecom{{System: "phone", Value: fmt.Sprintf("0113496%04d", 500+i), Use: "home"}},
		})
	}
	return out
}

// withCheckDigit appends the modulus-11 check digit to nine digits; false
// when there is none (a check of 10).
func withCheckDigit(nine int) (string, bool) {
	s := strconv.Itoa(nine)
	if len(s) != 9 {
		return "", false
	}
	sum := 0
	for i := range 9 {
		sum += int(s[i]-'0') * (10 - i)
	}
	check := 11 - sum%11
	switch check {
	case 11:
		check = 0
	case 10:
		return "", false
	}
	return s + strconv.Itoa(check), true
}
