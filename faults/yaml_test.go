package faults

import (
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/viper"
)

// loadYAML reads a configuration the way sspemu's loadConfig does: one
// viper instance, YAML, UnmarshalExact so a mistyped key is an error.
func loadYAML(t *testing.T, doc string) (Config, error) {
	t.Helper()
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(strings.NewReader(doc)); err != nil {
		t.Fatalf("YAML: %v", err)
	}
	var c struct {
		Faults Config `mapstructure:"faults"`
	}
	err := v.UnmarshalExact(&c)
	return c.Faults, err
}

func TestYAMLRules(t *testing.T) {
	cfg, err := loadYAML(t, `
faults:
  header: true
  rules:
    - name: ssp-502
      match: {interaction: appointments, from: "200000000359"}
      at: ssp
      status: 502
      probability: 0.25
    - name: practice-500
      match:
        interaction: urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1
        method: POST
        path: ^/Appointment$
      at: provider
      status: 500
      code: INTERNAL_SERVER_ERROR
      times: 2
    - name: slow-slots
      at: provider
      delay:
        uniform: {min: 200ms, max: 2s}
    - name: tail
      at: ssp
      delay:
        lognormal: {median: 300ms, sigma: 0.5}
    - name: drop
      match: {nhs_number: "9690937286"}
      at: ssp
      reset: true
    - name: two-seconds
      at: provider
      delay: {fixed: 2s}
`)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Header: true, Rules: []Rule{
		{Name: "ssp-502", Match: Match{Interaction: "appointments", From: "200000000359"}, At: AtSSP, Status: 502, Probability: ptr(0.25)},
		{Name: "practice-500", Match: Match{Interaction: "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1", Method: "POST", Path: "^/Appointment$"},
			At: AtProvider, Status: 500, Code: "INTERNAL_SERVER_ERROR", Times: ptr(2)},
		{Name: "slow-slots", At: AtProvider, Delay: &Delay{Uniform: &Uniform{Min: "200ms", Max: "2s"}}},
		{Name: "tail", At: AtSSP, Delay: &Delay{Lognormal: &Lognormal{Median: "300ms", Sigma: 0.5}}},
		{Name: "drop", Match: Match{NHSNumber: "9690937286"}, At: AtSSP, Reset: true},
		{Name: "two-seconds", At: AtProvider, Delay: &Delay{Fixed: "2s"}},
	}}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("read\n%+v\nwant\n%+v", cfg, want)
	}
	set, err := NewSet(cfg, Options{})
	if err != nil {
		t.Fatalf("valid YAML rules refused: %v", err)
	}
	if !set.HeaderEnabled() || len(set.List()) != 6 {
		t.Errorf("set holds %d rules, header %v", len(set.List()), set.HeaderEnabled())
	}
}

func TestYAMLMistakes(t *testing.T) {
	t.Run("values are named by rule and field", func(t *testing.T) {
		cfg, err := loadYAML(t, `
faults:
  rules:
    - name: ok
      at: ssp
      status: 502
    - name: bad-ssp
      at: ssp
      status: 500
    - name: slow-slots
      at: provider
      delay: {uniform: {min: 2s, max: 1s}}
    - name: number-delay
      at: provider
      delay: {fixed: 2}
`)
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewSet(cfg, Options{})
		want := strings.Join([]string{
			`faults.rules[1] "bad-ssp": status: 500 is not a status the SSP answers with itself: one of 400, 403, 405, 415, 502, 504 (a provider's own statuses need at: provider)`,
			`faults.rules[2] "slow-slots": delay.uniform.max: must be ≥ min (1s < 2s)`,
			`faults.rules[3] "number-delay": delay.fixed: "2" is not a Go duration such as 150ms or 2s`,
		}, "\n")
		if err == nil || err.Error() != want {
			t.Errorf("got:\n%v\nwant:\n%s", err, want)
		}
	})
	t.Run("a mistyped key is an error", func(t *testing.T) {
		_, err := loadYAML(t, `
faults:
  rules:
    - name: x
      at: ssp
      status: 502
      probabilty: 0.5
`)
		if err == nil || !strings.Contains(err.Error(), "probabilty") {
			t.Errorf("mistyped key not reported: %v", err)
		}
	})
}
