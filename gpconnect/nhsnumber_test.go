package gpconnect

import "testing"

func TestValidNHSNumber(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"9690937286", true},
		{"9690937405", true},
		{"9690937287", false},
		{"969093728", false},
		{"96909372860", false},
		{"969093728a", false},
		{"", false},
		{"0000000000", true},
		{"1000000010", false}, // check digit would be 10
	} {
		if got := ValidNHSNumber(tc.in); got != tc.want {
			t.Errorf("ValidNHSNumber(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
