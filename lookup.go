package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"sspemu/certs"
	"sspemu/sds"
)

// lookupResult is what a consumer takes from SDS to call a practice.
type lookupResult struct {
	ODS         string `json:"ods"`
	Interaction string `json:"interaction"`
	Endpoint    string `json:"endpoint"`
	PartyKey    string `json:"party_key"`
	ASID        string `json:"asid"`
	SSPURL      string `json:"ssp_url"`
}

func newLookupCmd(stdout io.Writer) *cobra.Command {
	var file, ods, interaction, via, server, format string
	cmd := &cobra.Command{
		Use:   "lookup --ods ODS --interaction URN",
		Short: "Look a practice up on the running SDS, as a consumer does before calling it",
		Long: "lookup makes the GP Connect 1.2.7 SDS lookup against a running sspemu: the practice's\n" +
			"endpoint and party key (FHIR GET /Endpoint, or the nhsMhs record over LDAP), then its\n" +
			"ASID (GET /Device, or the nhsAs record), and prints them with the URL to call through\n" +
			"the SSP (its prefix form). --format env prints shell assignments to eval.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(viper.New(), file, nil)
			if err != nil {
				return err
			}
			if ods == "" || interaction == "" {
				return errors.New("say --ods (the practice's ODS code) and --interaction (the interaction ID, e.g. " + "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1)")
			}
			var res lookupResult
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			switch via {
			case "fhir":
				res, err = lookupFHIR(ctx, cfg, server, ods, interaction)
			case "ldap", "ldaps":
				res, err = lookupLDAP(cfg, via, server, ods, interaction)
			default:
				return fmt.Errorf("--via %q: say fhir, ldap or ldaps", via)
			}
			if err != nil {
				return err
			}
			res.ODS, res.Interaction = ods, interaction
			res.SSPURL = "https://" + cfg.SSP.Listen + "/" + res.Endpoint
			return printLookup(stdout, format, res)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&file, "config", "c", "", "configuration file (for the Spine and SSP addresses and the dev PKI)")
	fs.StringVar(&ods, "ods", "", "the practice's ODS code, from PDS (generalPractitioner)")
	fs.StringVar(&interaction, "interaction", "", "the GP Connect interaction ID to be called")
	fs.StringVar(&via, "via", "fhir", "fhir (the SDS FHIR API), ldap or ldaps (the 1.2.7 LDAP lookup; ldaps with the dev consumer certificate)")
	fs.StringVar(&server, "server", "", "the SDS to ask; default from the config: https://<spine.listen>"+sds.BasePath+", ldap://<spine.ldap.listen> or ldaps://<spine.ldap.ldaps_listen>")
	fs.StringVar(&format, "format", "text", "text, env (shell assignments) or json")
	return cmd
}

func printLookup(w io.Writer, format string, r lookupResult) error {
	switch format {
	case "text":
		_, err := fmt.Fprintf(w, "endpoint   %s\nparty key  %s\nASID       %s   (send as Ssp-To)\nSSP URL    %s/<request>\n",
			r.Endpoint, r.PartyKey, r.ASID, r.SSPURL)
		return err
	case "env":
		q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
		_, err := fmt.Fprintf(w, "GPC_ENDPOINT=%s\nGPC_PARTY_KEY=%s\nGPC_ASID=%s\nGPC_SSP_URL=%s\n", q(r.Endpoint), q(r.PartyKey), q(r.ASID), q(r.SSPURL))
		return err
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return fmt.Errorf("--format %q: say text, env or json", format)
}

// lookupFHIR is the lookup through the SDS FHIR API, verified with the dev
// CA, with spine.api_key (or any key when it is empty).
func lookupFHIR(ctx context.Context, cfg Config, base, ods, interaction string) (lookupResult, error) {
	if base == "" {
		base = "https://" + cfg.Spine.Listen + sds.BasePath
	}
	pool, err := certs.LoadCertPool(filepath.Join(cfg.PKIDir(), certs.CAFile))
	if err != nil {
		return lookupResult{}, fmt.Errorf("the dev CA, to trust SDS: %w", err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}, Timeout: 20 * time.Second}
	key := cfg.Spine.APIKey
	if key == "" {
		key = "sspemu-lookup"
	}
	search := func(resource string, params url.Values) ([]map[string]any, error) {
		u := strings.TrimSuffix(base, "/") + "/" + resource + "?" + params.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("apikey", key)
		req.Header.Set("X-Correlation-ID", uuid.NewString())
		req.Header.Set("Accept", "application/fhir+json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("cannot reach SDS at %s (is `sspemu serve` running with spine.enabled?): %w", base, err)
		}
		defer resp.Body.Close()
		var body struct {
			Entry []struct {
				Resource map[string]any `json:"resource"`
			} `json:"entry"`
			Issue []struct {
				Diagnostics string `json:"diagnostics"`
			} `json:"issue"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&body); err != nil {
			return nil, fmt.Errorf("GET %s: %s, not a FHIR answer: %w", resource, resp.Status, err)
		}
		if resp.StatusCode != http.StatusOK {
			msg := resp.Status
			if len(body.Issue) > 0 {
				msg += ": " + body.Issue[0].Diagnostics
			}
			return nil, fmt.Errorf("GET %s: %s", resource, msg)
		}
		var out []map[string]any
		for _, e := range body.Entry {
			out = append(out, e.Resource)
		}
		return out, nil
	}
	eps, err := search("Endpoint", url.Values{"organization": {sds.SystemODS + "|" + ods}, "identifier": {sds.SystemInteraction + "|" + interaction}})
	if err != nil {
		return lookupResult{}, err
	}
	var res lookupResult
	var found []string
	for _, ep := range eps {
		addr, _ := ep["address"].(string)
		found = append(found, addr)
		res.Endpoint, res.PartyKey = addr, fhirIdentifier(ep, sds.SystemPartyKey)
	}
	if err := exactlyOne("endpoint (GET /Endpoint)", ods, interaction, found); err != nil {
		return lookupResult{}, err
	}
	devs, err := search("Device", url.Values{"organization": {sds.SystemODS + "|" + ods},
		"identifier": {sds.SystemInteraction + "|" + interaction, sds.SystemPartyKey + "|" + res.PartyKey}})
	if err != nil {
		return lookupResult{}, err
	}
	found = nil
	for _, d := range devs {
		res.ASID = fhirIdentifier(d, sds.SystemASID)
		found = append(found, res.ASID)
	}
	if err := exactlyOne("accredited system (GET /Device with party key "+res.PartyKey+")", ods, interaction, found); err != nil {
		return lookupResult{}, err
	}
	return res, nil
}

// lookupLDAP is the two-step lookup of GP Connect 1.2.7 over LDAP; ldaps
// presents the dev consumer certificate.
func lookupLDAP(cfg Config, via, server, ods, interaction string) (lookupResult, error) {
	if server == "" {
		server = "ldap://" + cfg.Spine.LDAP.Listen
		if via == "ldaps" {
			server = "ldaps://" + cfg.Spine.LDAP.LDAPSListen
		}
	}
	var opts []ldap.DialOpt
	if via == "ldaps" {
		pki := cfg.PKIDir()
		pool, err := certs.LoadCertPool(filepath.Join(pki, certs.CAFile))
		if err != nil {
			return lookupResult{}, fmt.Errorf("the dev CA, to trust SDS: %w", err)
		}
		cert, err := certs.LoadKeyPair(filepath.Join(pki, certs.ConsumerFile), filepath.Join(pki, certs.ConsumerKeyFile))
		if err != nil {
			return lookupResult{}, fmt.Errorf("the consumer certificate for LDAPS: %w", err)
		}
		opts = append(opts, ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	}
	conn, err := ldap.DialURL(server, opts...)
	if err != nil {
		return lookupResult{}, fmt.Errorf("cannot reach SDS at %s (is `sspemu serve` running with spine.ldap.enabled?): %w", server, err)
	}
	defer conn.Close()
	conn.SetTimeout(20 * time.Second)
	search := func(filter string, attrs ...string) ([]*ldap.Entry, error) {
		res, err := conn.Search(ldap.NewSearchRequest(sds.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil))
		if err != nil {
			return nil, fmt.Errorf("ldap search %s: %w", filter, err)
		}
		return res.Entries, nil
	}
	esc := ldap.EscapeFilter
	mhs, err := search("(&(nhsIDCode="+esc(ods)+")(objectClass=nhsMhs)(nhsMhsSvcIA="+esc(interaction)+"))", "nhsMhsEndPoint", "nhsMhsPartyKey")
	if err != nil {
		return lookupResult{}, err
	}
	var res lookupResult
	var found []string
	for _, e := range mhs {
		res.Endpoint, res.PartyKey = e.GetEqualFoldAttributeValue("nhsMhsEndPoint"), e.GetEqualFoldAttributeValue("nhsMhsPartyKey")
		found = append(found, res.Endpoint)
	}
	if err := exactlyOne("MHS record (nhsMhs)", ods, interaction, found); err != nil {
		return lookupResult{}, err
	}
	as, err := search("(&(nhsIDCode="+esc(ods)+")(objectClass=nhsAs)(nhsMHSPartyKey="+esc(res.PartyKey)+"))", "uniqueIdentifier")
	if err != nil {
		return lookupResult{}, err
	}
	found = nil
	for _, e := range as {
		res.ASID = e.GetEqualFoldAttributeValue("uniqueIdentifier")
		found = append(found, res.ASID)
	}
	if err := exactlyOne("accredited system record (nhsAs with party key "+res.PartyKey+")", ods, interaction, found); err != nil {
		return lookupResult{}, err
	}
	return res, nil
}

// exactlyOne explains a lookup that found nothing, or more than the one a
// consumer can use.
func exactlyOne(what, ods, interaction string, found []string) error {
	switch len(found) {
	case 1:
		return nil
	case 0:
		return fmt.Errorf("SDS has no %s for ODS code %s and %s: is a system with ods %s, listing that interaction in receives, in registry.systems?",
			what, ods, interaction, ods)
	}
	return fmt.Errorf("SDS has %d of %s for ODS code %s and %s (%s): a consumer needs exactly one", len(found), what, ods, interaction, strings.Join(found, ", "))
}

func fhirIdentifier(res map[string]any, system string) string {
	ids, _ := res["identifier"].([]any)
	for _, id := range ids {
		if m, ok := id.(map[string]any); ok && m["system"] == system {
			v, _ := m["value"].(string)
			return v
		}
	}
	return ""
}
