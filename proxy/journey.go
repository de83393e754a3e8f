package proxy

import (
	"bytes"
	"fmt"
	"log"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"sspemu/audit"
	"sspemu/gpconnect"
)

// Observer is told how each request travelled, for the live console. Both
// methods are called on the request's (or the handshake's) own goroutine,
// so an implementation must return at once: hand the value on without
// waiting, and drop it rather than wait when it cannot keep up. The values
// are the observer's to keep; the proxy never touches them again.
type Observer interface {
	Journey(j *Journey)
	Handshake(h *Handshake)
}

// HandshakeMetrics is the optional part of Metrics that counts refused TLS
// handshakes by reason; the proxy asks a Metrics for it rather than widening
// Metrics, so every existing implementation stays one.
type HandshakeMetrics interface {
	TLSHandshakeFailure(reason string)
}

// The verdicts a step of a journey can have.
const (
	VerdictPassed = "passed"
	VerdictFailed = "failed"
	VerdictNotRun = "not run"
	VerdictLogged = "logged only" // the rule failed in log mode: noted, not enforced
)

// The actors of a journey's steps. The chain's rules are the SSP's; the
// practice is the provider behind it. Spine services (PDS, SDS) join as
// further actors when a journey carries their calls.
const (
	ActorSSP      = "ssp"
	ActorPractice = "practice"
)

// RuleOrder is the request path of design.md, in order (the vocabulary's,
// gpconnect.Rules): the order a journey's SSP steps are listed in. limits
// and fault are the rules of the request limits and the fault injection;
// they appear in a journey only when they acted.
var RuleOrder = gpconnect.Rules()

// actedOnly are the rules listed only when they decided or acted.
var actedOnly = []gpconnect.Rule{gpconnect.RuleLimits, gpconnect.RuleFault}

// Step is one stage of a journey: a rule of the chain, or a call to another
// actor, with its verdict.
type Step struct {
	Actor   string `json:"actor"` // ActorSSP, ActorPractice, ...
	Name    string `json:"name"`  // a rule name, or the actor's call
	Verdict string `json:"verdict"`
	Token   string `json:"token,omitempty"`  // the SSP token or provider error code of a failed step
	Status  int    `json:"status,omitempty"` // the HTTP status this step answered with
	Detail  string `json:"detail,omitempty"` // the reason of a failure, or a note
}

// Journey is how one finished request travelled through the SSP: who asked
// for what, each rule's verdict in the chain's order, the answer and its
// timing. The raw bearer token is kept only so the console can decode and
// judge its claims; it is never encoded.
type Journey struct {
	Time            time.Time          `json:"time"` // the request reached the SSP
	TraceID         string             `json:"trace_id"`
	From            string             `json:"from"`
	To              string             `json:"to"`
	Interaction     string             `json:"interaction"`
	InteractionName string             `json:"interaction_name,omitempty"`
	Method          string             `json:"method"`
	Target          string             `json:"target"`
	Status          int                `json:"status"`
	Decision        gpconnect.Decision `json:"decision"`
	Rule            gpconnect.Rule     `json:"rule"`  // the rule that refused or failed; empty when forwarded
	Token           string             `json:"token"` // its SSP token, or the provider error code
	Reason          string             `json:"reason"`
	Notes           []string           `json:"notes,omitempty"`
	Fault           string             `json:"fault"` // the fault rule that acted, if any
	Client          string             `json:"client"`
	ClientSubject   string             `json:"client_subject"`
	Steps           []Step             `json:"steps"`
	RequestHeader   http.Header        `json:"request_header"` // without Authorization
	ResponseHeader  http.Header        `json:"response_header"`
	TotalSeconds    float64            `json:"total_seconds"`
	UpstreamSeconds float64            `json:"upstream_seconds"`
	BytesIn         int64              `json:"bytes_in"`
	BytesOut        int64              `json:"bytes_out"`
	ClientAborted   bool               `json:"client_aborted"`

	// JWTMode and InteractionRouteMode are the chain's modes (enforce, log,
	// off) when the request was judged.
	JWTMode              string `json:"jwt_mode"`
	InteractionRouteMode string `json:"interaction_route_mode"`
	// Authorization is the header as sent, for decoding the token's claims;
	// the raw token never leaves the process.
	Authorization string `json:"-"`
	// ServiceRoot is the endpoint registered for To (the aud a token must
	// carry) and JWTSkew the clock tolerance: what the jwt rule judged with.
	ServiceRoot string        `json:"-"`
	JWTSkew     time.Duration `json:"-"`
}

// publish tells the observer how the request in sc travelled. It runs after
// the answer is written, copies what it needs, and costs nothing without an
// observer.
func (s *Server) publish(r *http.Request, sc *scope, cw *countingWriter, t *audit.Transaction) {
	if s.observer == nil {
		return
	}
	// The journey takes the request's and the answer's header maps
	// themselves, not copies (two copies were 5% of the request path's
	// CPU): the request is over, nothing changes its headers again, and
	// net/http wrote the answer from its own copy.
	j := &Journey{
		Time:                 sc.start,
		TraceID:              t.TraceID,
		From:                 sc.hdr.From,
		To:                   sc.hdr.To,
		Interaction:          sc.hdr.InteractionID,
		Method:               r.Method,
		Target:               sc.target.Raw,
		Status:               t.Status,
		Decision:             t.Decision,
		Rule:                 sc.rule,
		Fault:                t.Fault,
		Token:                sc.sspToken,
		Reason:               sc.reason,
		Notes:                slices.Clone(sc.notes),
		Client:               r.RemoteAddr,
		ClientSubject:        sc.subject,
		RequestHeader:        r.Header,
		ResponseHeader:       cw.Header(),
		TotalSeconds:         t.TotalSeconds,
		UpstreamSeconds:      t.UpstreamSeconds,
		BytesIn:              t.BytesIn,
		BytesOut:             t.BytesOut,
		ClientAborted:        t.ClientAborted,
		JWTMode:              s.cfg.JWT,
		InteractionRouteMode: s.cfg.InteractionRoute,
		Authorization:        r.Header.Get("Authorization"),
		JWTSkew:              s.cfg.JWTSkew,
	}
	// As the audit does: a request refused before its Ssp-* headers were
	// judged still says who asked for what.
	for _, f := range []struct {
		dst    *string
		header string
	}{{&j.From, "Ssp-From"}, {&j.To, "Ssp-To"}, {&j.Interaction, "Ssp-InteractionID"}} {
		if *f.dst == "" {
			*f.dst = rawHeader(r, f.header)
		}
	}
	if j.Target == "" {
		j.Target = r.RequestURI
	}
	if in, ok := gpconnect.Lookup(j.Interaction); ok {
		j.InteractionName = in.Name
	}
	if sys, ok := sc.table.System(j.To); ok {
		j.ServiceRoot = sys.Endpoint
	}
	j.RequestHeader.Del("Authorization") // kept apart, in Authorization
	if j.Token == "" {
		// A refusal in the provider's shape: its body's code.
		j.Token = sc.code
	}
	j.Steps = journeySteps(j, sc.notes)
	s.observer.Journey(j)
}

// journeySteps lists the chain's rules in order with their verdicts, then
// the practice: rules before the deciding one passed, it failed, the rest
// did not run (but a refusal is still audited). A rule in log mode that
// would have refused is "logged only"; a rule turned off did not run.
func journeySteps(j *Journey, notes []string) []Step {
	stop := len(RuleOrder) // index of the rule that ended the chain
	switch {
	case j.Decision == gpconnect.DecisionAnswered:
		stop = slices.Index(RuleOrder, gpconnect.RuleMethod)
	case j.Rule != "":
		if i := slices.Index(RuleOrder, j.Rule); i >= 0 {
			stop = i
		}
	}
	aborted := "the consumer closed the connection before the whole answer was sent"
	steps := make([]Step, 0, len(RuleOrder)+1)
	for i, rule := range RuleOrder {
		if slices.Contains(actedOnly, rule) && rule != j.Rule && !(rule == gpconnect.RuleFault && j.Fault != "") {
			continue
		}
		st := Step{Actor: ActorSSP, Name: string(rule), Verdict: VerdictPassed}
		switch {
		case i == stop && j.Decision == gpconnect.DecisionAnswered:
			st.Status, st.Detail = j.Status, j.Reason
		case i == stop:
			st.Verdict, st.Token, st.Status, st.Detail = VerdictFailed, j.Token, j.Status, j.Reason
		case rule == gpconnect.RuleAudit && i > stop:
			st.Detail = "the refusal was recorded before it was answered"
			if j.Decision == gpconnect.DecisionAnswered {
				st.Detail = "the preflight was recorded before it was answered"
			}
		case i > stop:
			st.Verdict = VerdictNotRun
		case rule == gpconnect.RuleUpstream && j.ClientAborted:
			st.Verdict, st.Detail = VerdictFailed, aborted
		case rule == gpconnect.RuleJWT && j.JWTMode == ModeOff:
			st.Verdict, st.Detail = VerdictNotRun, "ssp.jwt is off: the token is decoded for the audit, not judged"
		case rule == gpconnect.RuleInteractionRoute && j.InteractionRouteMode == ModeOff:
			st.Verdict, st.Detail = VerdictNotRun, "ssp.interaction_route is off: the path is not matched with the interaction"
		default:
			for _, n := range notes {
				if d, ok := strings.CutPrefix(n, string(rule)+" (logged, not enforced): "); ok {
					st.Verdict, st.Detail = VerdictLogged, d
				} else if rule == gpconnect.RuleTarget && strings.HasPrefix(n, "collapsed https:/") {
					st.Detail = n
				}
			}
		}
		steps = append(steps, st)
	}
	practice := Step{Actor: ActorPractice, Name: "provider", Verdict: VerdictNotRun}
	switch {
	case j.Rule == gpconnect.RuleUpstream:
		practice.Verdict, practice.Detail = VerdictFailed, j.Reason
	case j.Rule == "" && (j.Decision == gpconnect.DecisionForwarded || j.Decision == gpconnect.DecisionError):
		practice.Verdict, practice.Status = VerdictPassed, j.Status
		practice.Detail = fmt.Sprintf("answered %d %s", j.Status, http.StatusText(j.Status))
		if j.ClientAborted {
			practice.Detail += "; " + aborted
		}
	}
	return append(steps, practice)
}

// The reasons a TLS handshake is refused for, the label values of
// ssp_tls_handshake_failures_total: a small fixed set, so a client cannot
// add series.
const (
	HandshakeNoCertificate  = "no-certificate"  // the client sent no certificate
	HandshakeUnknownCA      = "unknown-ca"      // its certificate is not from the client CA
	HandshakeExpired        = "expired"         // its certificate is out of date (expired or not yet valid)
	HandshakeRevoked        = "revoked"         // its certificate is on the CRL
	HandshakeBadCertificate = "bad-certificate" // another defect: key usage, a malformed certificate
	HandshakeProtocol       = "protocol"        // no TLS version in common
	HandshakeCipherSuite    = "cipher-suite"    // no cipher suite in common
	HandshakeSSPUntrusted   = "ssp-untrusted"   // the client refused the SSP's own certificate
	HandshakeNotTLS         = "not-tls"         // plain HTTP, or anything else that is not TLS
	HandshakeAborted        = "aborted"         // the connection closed or timed out mid-handshake
	HandshakeOther          = "other"
)

// HandshakeReasons lists every reason, in the order above.
var HandshakeReasons = []string{
	HandshakeNoCertificate, HandshakeUnknownCA, HandshakeExpired, HandshakeRevoked, HandshakeBadCertificate,
	HandshakeProtocol, HandshakeCipherSuite, HandshakeSSPUntrusted, HandshakeNotTLS, HandshakeAborted, HandshakeOther,
}

// Handshake is one refused TLS handshake: a consumer that never reached the
// chain, and so has no audit record, only a TLS alert to go by.
type Handshake struct {
	Time   time.Time `json:"time"`
	Client string    `json:"client"` // the client's address
	Reason string    `json:"reason"` // one of HandshakeReasons
	Detail string    `json:"detail"` // what the TLS library said, without server paths
	Advice string    `json:"advice"` // what to change, in plain words
}

var handshakeAdvice = map[string]string{
	HandshakeNoCertificate:  "the SSP requires TLS mutual authentication: send the consumer's client certificate and key (curl --cert consumer.pem --key consumer-key.pem)",
	HandshakeUnknownCA:      "the client certificate is not signed by the CA the SSP trusts (ssp.tls.client_ca): use a certificate issued by the dev PKI (sspemu certs issue --client)",
	HandshakeExpired:        "the client certificate is expired or not yet valid: issue a new one (sspemu certs issue --client) or check the consumer's clock",
	HandshakeRevoked:        "the client certificate is on the SSP's certificate revocation list (ssp.tls.crl): issue a new one",
	HandshakeBadCertificate: "the client certificate cannot be used for client authentication: issue one with sspemu certs issue --client",
	HandshakeProtocol:       "the client offered no TLS version the SSP accepts: the Spine speaks TLS 1.2 (ssp.tls.min_version)",
	HandshakeCipherSuite:    "the client offered no cipher suite the SSP accepts: the Spine takes only ECDHE suites with AES-GCM or AES-256 (forward secrecy)",
	HandshakeSSPUntrusted:   "the client refused the SSP's own certificate: give the client the dev CA to trust (curl --cacert ca.pem)",
	HandshakeNotTLS:         "the client did not speak TLS: the SSP is https:// only",
	HandshakeAborted:        "the client closed the connection, or went quiet, before the handshake finished",
	HandshakeOther:          "the TLS handshake failed; the detail says why",
}

// HandshakeAdvice says in plain words what to change for a reason.
func HandshakeAdvice(reason string) string { return handshakeAdvice[reason] }

// revokedBy cuts the CRL's path out of the revocation error: a server path
// has no place in what the console shows.
var revokedBy = regexp.MustCompile(`is revoked by .*$`)

// ClassifyHandshake turns the error text of a failed server handshake into
// one of HandshakeReasons and a detail fit to show. It reads the text
// because net/http reports the handshake error only as a log line.
func ClassifyHandshake(msg string) (reason, detail string) {
	has := func(s string) bool { return strings.Contains(msg, s) }
	switch {
	case has("didn't provide a certificate"), has("no client certificate"):
		return HandshakeNoCertificate, msg
	case has("certificate signed by unknown authority"):
		return HandshakeUnknownCA, msg
	case has("has expired or is not yet valid"):
		return HandshakeExpired, msg
	case has("is revoked by"):
		return HandshakeRevoked, revokedBy.ReplaceAllString(msg, "is revoked by the SSP's CRL")
	case has("remote error: tls: "):
		return HandshakeSSPUntrusted, msg
	case has("failed to verify certificate"), has("incompatible key usage"), has("tls: failed to parse client certificate"):
		return HandshakeBadCertificate, msg
	case has("offered only unsupported versions"), has("unsupported SSLv2"), has("protocol version not supported"):
		return HandshakeProtocol, msg
	case has("no cipher suite supported"):
		return HandshakeCipherSuite, msg
	case has("HTTP request to an HTTPS server"), has("does not look like a TLS handshake"), has("oversized record"):
		return HandshakeNotTLS, msg
	case msg == "EOF", has("unexpected EOF"), has("connection reset"), has("broken pipe"), has("i/o timeout"), has("use of closed"):
		return HandshakeAborted, "the connection ended during the handshake"
	}
	return HandshakeOther, msg
}

// handshakePrefix opens the line net/http logs for a failed handshake:
// "http: TLS handshake error from <addr>: <error>".
const handshakePrefix = "http: TLS handshake error from "

// serverErrorLog is the http.Server's ErrorLog: refused handshakes are
// classified, counted, told to the observer and logged with their reason;
// every other line is logged as it comes.
func (s *Server) serverErrorLog() *log.Logger {
	return log.New(handshakeLog{s}, "", 0)
}

type handshakeLog struct{ s *Server }

func (w handshakeLog) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	rest, ok := strings.CutPrefix(line, handshakePrefix)
	if !ok {
		w.s.log.Warn(line)
		return len(p), nil
	}
	client, msg, _ := strings.Cut(rest, ": ")
	reason, detail := ClassifyHandshake(msg)
	w.s.log.Warn("TLS handshake refused", "client", client, "reason", reason, "err", msg)
	if m, ok := w.s.metrics.(HandshakeMetrics); ok {
		m.TLSHandshakeFailure(reason)
	}
	if w.s.observer != nil {
		w.s.observer.Handshake(&Handshake{Time: w.s.now(), Client: client, Reason: reason, Detail: detail, Advice: HandshakeAdvice(reason)})
	}
	return len(p), nil
}
