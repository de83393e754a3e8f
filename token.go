package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"sspemu/gpconnect"
)

func newTokenCmd(stdout io.Writer) *cobra.Command {
	var file, interaction, iat string
	var lifetime time.Duration
	claims := map[string]*string{} // flag name -> its value; set claims only when the flag is given
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a valid GP Connect 1.2.7 JWT (only the token, for $(sspemu token ...))",
		Long: "Print a valid unsigned GP Connect 1.2.7 JWT for --interaction, with defaults taken\n" +
			"from the registry (aud = the default provider's endpoint, the consumer's ODS code).\n" +
			"Each other flag sets one claim, so a deliberately bad token is one flag away.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(viper.New(), file, nil)
			if err != nil {
				return err
			}
			id := interaction
			if !strings.HasPrefix(id, "urn:") {
				id = gpconnect.URNPrefix + id
			}
			in, ok := gpconnect.Lookup(id)
			if !ok {
				return fmt.Errorf("--interaction %q is not a GP Connect interaction (e.g. %s)", interaction, gpconnect.ReadPatient)
			}
			table, err := cfg.Registry.Build()
			if err != nil {
				return fmt.Errorf("registry: %w", err)
			}
			now := time.Now()
			if iat != "" {
				if now, err = parseTime(iat); err != nil {
					return fmt.Errorf("--iat: %w", err)
				}
			}
			spec := gpconnect.DefaultTokenSpec(in, "", now)
			defaultASID := ""
			if ps := cfg.Demonstrator.PracticeList(); len(ps) > 0 {
				defaultASID = ps[0].ASID // the first practice is the default provider
			}
			for _, sys := range table.Systems() {
				if sys.Endpoint != "" && (spec.Audience == "" || sys.ASID == defaultASID) {
					spec.Audience = sys.Endpoint
				}
			}
			for _, sys := range table.Systems() {
				if sys.FQDN != "" && len(sys.Sends) > 0 {
					spec.ODSCode, spec.OrgName = sys.ODS, sys.Name
					spec.Issuer = "https://" + sys.FQDN + "/"
					spec.DeviceSystem = "https://" + sys.FQDN + "/Id/device-identifier"
					break
				}
			}
			if cmd.Flags().Changed("lifetime") {
				spec.Lifetime = lifetime
			}
			set := map[string]*string{
				"iss": &spec.Issuer, "sub": &spec.Subject, "aud": &spec.Audience, "scope": &spec.Scope,
				"reason": &spec.ReasonForRequest, "ods": &spec.ODSCode, "org-name": &spec.OrgName,
				"sds-user-id": &spec.SDSUserID, "role-profile-id": &spec.RoleProfileID,
				"practitioner-id": &spec.PractitionerID, "family": &spec.Family, "given": &spec.Given,
			}
			for name, dst := range set {
				if cmd.Flags().Changed(name) {
					*dst = *claims[name]
				}
			}
			if cmd.Flags().Changed("practitioner-id") && !cmd.Flags().Changed("sub") {
				spec.Subject = spec.PractitionerID // sub must equal requesting_practitioner.id
			}
			fmt.Fprintln(stdout, spec.Encode())
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&file, "config", "c", "", "configuration file (for the registry defaults)")
	fs.StringVar(&interaction, "interaction", gpconnect.ReadMetadata, "the interaction URN (or its part after "+gpconnect.URNPrefix+")")
	fs.StringVar(&iat, "iat", "", "issued-at: Unix seconds or RFC 3339 (default now)")
	fs.DurationVar(&lifetime, "lifetime", gpconnect.TokenLifetime, "exp - iat (the rules require exactly 5m0s)")
	for _, f := range [][2]string{
		{"iss", "iss: the consumer system's URL"},
		{"sub", "sub: the user's ID (must equal requesting_practitioner.id)"},
		{"aud", "aud: the provider's service root"},
		{"scope", "requested_scope (default: the interaction's)"},
		{"reason", "reason_for_request (valid: directcare)"},
		{"ods", "requesting_organization ODS code"},
		{"org-name", "requesting_organization name"},
		{"sds-user-id", "requesting_practitioner SDS user ID (or UNK)"},
		{"role-profile-id", "requesting_practitioner SDS role profile ID (or UNK; empty leaves it out)"},
		{"practitioner-id", "requesting_practitioner.id (sub follows unless --sub is given)"},
		{"family", "requesting_practitioner name[0].family"},
		{"given", "requesting_practitioner name[0].given[0]"},
	} {
		claims[f[0]] = fs.String(f[0], "", f[1])
	}
	return cmd
}

func parseTime(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither Unix seconds nor RFC 3339", s)
	}
	return t, nil
}
