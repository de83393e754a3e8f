package faults

import (
	"fmt"
	"testing"
)

// BenchmarkMatch measures what the SSP's request path pays for faults:
// nothing loaded, ten rules that do not match, and a rule on an NHS number
// that must read the body.
func BenchmarkMatch(b *testing.B) {
	var ten []Rule
	for i := range 10 {
		ten = append(ten, Rule{Name: fmt.Sprintf("r%d", i), At: AtSSP, Status: 502, Match: Match{Interaction: "structured", Path: "^/Patient/"}})
	}
	cases := []struct {
		name  string
		rules []Rule
	}{
		{"none", nil},
		{"ten-unmatched", ten},
		{"nhs-number-in-body", []Rule{{Name: "n", At: AtSSP, Status: 502, Match: Match{NHSNumber: "9690937286"}}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s, err := NewSet(Config{Rules: c.rules}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			v := bookView()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Match(AtSSP, v, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
