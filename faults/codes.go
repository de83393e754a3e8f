package faults

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"sspemu/gpconnect"
)

// The SSP's token kinds (ssp-behaviour.md §4), named by their fixed text with
// the request's values left out. A rule at the SSP names one as its code; the
// answer fills in the request's values, so the body is the one the real SSP
// would send for that request.
const (
	SSPEndpoint      = "ENDPOINT_CPAID_VARIES_FROM_TARGETURL"              // 400
	SSPSender        = "ASID_CHECK_FAILED_MESSAGESENDER"                   // 403 (415 on the live SSP)
	SSPReceiver      = "PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER" // 403
	SSPAgreement     = "FOT_CHECK_FAILED_MESSAGESENDER_MESSAGERECEIVER"    // 403
	SSPMethod        = "405: Method Not Allowed"                           // 405
	SSPMediaType     = "Unsupported_Media_Type"                            // 415
	SSPCommunication = "ERROR_COMMUNICATING_TO_ENDPOINT_URL"               // 502, 504
)

// sspCode is one SSP token kind: the statuses it comes with and how the
// token is built from the request.
type sspCode struct {
	code     string
	statuses []int
	token    func(TokenValues) string
}

var sspCodes = []sspCode{
	{SSPEndpoint, []int{400}, func(v TokenValues) string {
		return "ENDPOINT_" + v.Endpoint + "_CPAID_" + v.CPAID + "_VARIES_FROM_TARGETURL_" + v.Target
	}},
	{SSPSender, []int{403, 415}, func(v TokenValues) string { return "ASID_CHECK_FAILED_MESSAGESENDER_" + v.From }},
	{SSPReceiver, []int{403}, func(v TokenValues) string { return "PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_" + v.To }},
	{SSPAgreement, []int{403}, func(v TokenValues) string {
		return "FOT_CHECK_FAILED_MESSAGESENDER_" + v.From + "_MESSAGERECEIVER_" + v.To
	}},
	{SSPMethod, []int{405}, func(TokenValues) string { return "405: Method Not Allowed" }},
	{SSPMediaType, []int{415}, func(TokenValues) string { return "Unsupported_Media_Type" }},
	// The table gives no token for 504; the SSP here sends the 502 token
	// with it (proxy/forward.go), so a fault does the same.
	{SSPCommunication, []int{502, 504}, func(v TokenValues) string { return "ERROR_COMMUNICATING_TO_ENDPOINT_URL_" + v.Target }},
}

// sspDefault is the code a status at the SSP gets when the rule gives none:
// the one token the specification's table has for it. 403 has three, so a
// rule must choose.
var sspDefault = map[int]string{
	400: SSPEndpoint, 405: SSPMethod, 415: SSPMediaType, 502: SSPCommunication, 504: SSPCommunication,
}

// providerDefault is the code a status at a practice gets when the rule
// gives none: the only GP Connect code of that status.
var providerDefault = map[int]string{
	409: gpconnect.CodeDuplicateRejected,
	415: gpconnect.CodeUnsupportedMediaType,
	500: gpconnect.CodeInternalServerError,
	501: gpconnect.CodeNotImplemented,
}

// SSPCodes lists the SSP token kinds of status, in the order of the
// specification's table; nil when the SSP never answers it.
func SSPCodes(status int) []string {
	var out []string
	for _, c := range sspCodes {
		if slices.Contains(c.statuses, status) {
			out = append(out, c.code)
		}
	}
	return out
}

// ProviderCodes lists the GP Connect error codes of status, in
// gpconnect.ProviderCodes' order (by code); nil when a provider never
// answers it.
func ProviderCodes(status int) []string {
	var out []string
	for _, c := range gpconnect.ProviderCodes() {
		if gpconnect.ProviderStatus(c) == status {
			out = append(out, c)
		}
	}
	return out
}

// statusCode checks that code (or, when empty, the default) belongs to
// status at at, and returns it spelt canonically.
func statusCode(at At, status int, code string) (string, error) {
	switch at {
	case AtSSP:
		codes := SSPCodes(status)
		if codes == nil {
			return "", fmt.Errorf("status: %d is not a status the SSP answers with itself: one of %s (a provider's own statuses need at: provider)", status, sspStatuses())
		}
		if code == "" {
			if d, ok := sspDefault[status]; ok {
				return d, nil
			}
			return "", fmt.Errorf("code: missing: status %d at the SSP needs one of %s", status, strings.Join(codes, ", "))
		}
		want := normalToken(code)
		for _, c := range codes {
			if strings.EqualFold(normalToken(c), want) {
				return c, nil
			}
		}
		return "", fmt.Errorf("code: %q is not an SSP token of status %d: one of %s", code, status, strings.Join(codes, ", "))
	case AtProvider:
		codes := ProviderCodes(status)
		if codes == nil {
			return "", fmt.Errorf("status: %d is not a status a GP Connect provider answers with: one of %s", status, providerStatuses())
		}
		if code == "" {
			if d, ok := providerDefault[status]; ok {
				return d, nil
			}
			return "", fmt.Errorf("code: missing: status %d at a provider needs one of %s", status, strings.Join(codes, ", "))
		}
		for _, c := range codes {
			if strings.EqualFold(c, code) {
				return c, nil
			}
		}
		return "", fmt.Errorf("code: %q is not a GP Connect error code of status %d: one of %s", code, status, strings.Join(codes, ", "))
	}
	// at is reported by its own check; the code cannot be judged without it.
	return code, nil
}

// normalToken reads a token kind the way ssp-behaviour.md writes it too, with
// its placeholders (ASID_CHECK_FAILED_MESSAGESENDER_<from>): each <...> is
// dropped with the underscores around it.
func normalToken(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		b.WriteByte('_')
		s = s[i+j+1:]
	}
	out := b.String()
	for strings.Contains(out, "__") {
		out = strings.ReplaceAll(out, "__", "_")
	}
	return strings.Trim(out, "_")
}

func sspStatuses() string {
	var out []int
	for _, c := range sspCodes {
		for _, s := range c.statuses {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	slices.Sort(out)
	return joinInts(out)
}

func providerStatuses() string {
	var out []int
	for _, c := range gpconnect.ProviderCodes() {
		if s := gpconnect.ProviderStatus(c); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return joinInts(out)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// TokenValues are the request's values an SSP token carries: the Ssp-From
// and Ssp-To ASIDs, the target URL, and the registered service root and CPA
// ID of the Ssp-To system (empty when it has none).
type TokenValues struct {
	From, To, Target, Endpoint, CPAID string
}

// Status is the status action of a rule that acted: the caller answers with
// it, in its own shape (Outcome) and the negotiated format.
type Status struct {
	Rule   string // the rule's name
	At     At
	Status int
	Code   string // an SSP token kind (at: ssp) or a GP Connect error code
}

// Token is the SSP token for this request: the display and diagnostics of
// the SSP's body. It is empty for a status at a provider.
func (s Status) Token(v TokenValues) string {
	if s.At != AtSSP {
		return ""
	}
	for _, c := range sspCodes {
		if c.code == s.Code {
			return c.token(v)
		}
	}
	return ""
}

// Reason says in plain language which rule answered and how, for the
// Sspemu-Reason header, the audit and a provider error's diagnostics.
func (s Status) Reason() string {
	where := "the SSP"
	if s.At == AtProvider {
		where = "the practice"
	}
	return fmt.Sprintf("fault rule %q made %s answer %d %s (sspemu fault injection, not a real failure)", s.Rule, where, s.Status, s.Code)
}

// Refusal is the answer in the exact shape of a real refusal of that
// status: the SSP's own shape (display = diagnostics = token, rule fault)
// at the SSP, the GP Connect provider shape with the reason as diagnostics
// at a practice. The caller renders it (gpconnect.Refusal.Write) in the
// format it negotiated.
func (s Status) Refusal(v TokenValues) *gpconnect.Refusal {
	if s.At == AtSSP {
		return &gpconnect.Refusal{Rule: gpconnect.RuleFault, Status: s.Status, Shape: gpconnect.ShapeSSP, Token: s.Token(v), Reason: s.Reason()}
	}
	return &gpconnect.Refusal{Status: s.Status, Code: s.Code, Reason: s.Reason()}
}
