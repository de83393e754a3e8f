package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"sspemu/agreements"
	"sspemu/audit"
	"sspemu/faults"
	"sspemu/gpconnect"
)

// scope is what one request has told the chain so far; each step fills its
// part and the audit writes it once.
type scope struct {
	start       time.Time
	table       *agreements.Table
	format      gpconnect.Format
	target      Target
	targetOK    bool
	hdr         gpconnect.SspHeaders
	interaction gpconnect.Interaction
	known       bool // interaction found in the catalogue
	token       *gpconnect.Token
	subject     string
	fingerprint string
	names       []string
	notes       []string

	decision gpconnect.Decision
	rule     gpconnect.Rule
	status   int
	sspToken string
	code     string // the Spine error code of a refusal in the provider's shape
	reason   string
	cleared  bool // every check passed: the engine may forward

	upstream      time.Duration
	clientAborted bool
	closeConn     bool // the connection ends after this answer

	fault  string               // the fault rules that acted at the SSP, comma-separated
	claims []audit.ClaimVerdict // each JWT claim's verdict, when the jwt rule ran
	reset  bool                 // a fault closed the connection unanswered

	issuer, serial, notAfter string    // the client certificate's, for the audit record
	auditSeq                 uint64    // the seq of the request's audit record, once written
	tap                      answerTap // the engine's writer (sniff.go)
	body                     []byte    // the request body readBody read, for its summary (body.go)
}

type scopeKey struct{}

func scopeFrom(ctx context.Context) *scope {
	sc, _ := ctx.Value(scopeKey{}).(*scope)
	return sc
}

func (sc *scope) note(format string, args ...any) {
	sc.notes = append(sc.notes, fmt.Sprintf(format, args...))
}

// begin opens the request's scope and, once the answer is written, its
// transaction record.
func (s *Server) begin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := &scope{start: s.now(), table: s.registry()}
		sc.format, _ = gpconnect.NegotiateResponse(rawQueryOf(r.RequestURI), r.Header.Get("Accept"), "")
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			id := s.identities.of(r.TLS.PeerCertificates[0])
			sc.subject, sc.fingerprint, sc.names = id.subject, id.fingerprint, id.names
			sc.issuer, sc.serial, sc.notAfter = id.issuer, id.serial, id.notAfter
		}
		cw := &countingWriter{ResponseWriter: w, closeConn: &sc.closeConn}
		cb := &countingBody{ReadCloser: r.Body}
		if r.Body != http.NoBody {
			r.Body = cb // NoBody stays, so a GET goes on without a body
		}
		next.ServeHTTP(cw, r.WithContext(context.WithValue(r.Context(), scopeKey{}, sc)))
		s.finish(r, sc, cw, cb)
	})
}

func (s *Server) finish(r *http.Request, sc *scope, cw *countingWriter, cb *countingBody) {
	total := s.now().Sub(sc.start)
	status := cw.status
	if status == 0 && !sc.reset {
		status = http.StatusOK
	}
	fault := sc.fault
	if fault == "" {
		// A fault at the practice says so in its answer.
		fault = cw.Header().Get(faults.Header)
	}
	// The consumer went away only if its answer could not be written: a
	// consumer that stopped sending (its body cut short) may still read
	// the refusal, so the answer is pushed out to find out.
	if r.Context().Err() != nil && (!cw.complete() || http.NewResponseController(cw.ResponseWriter).Flush() != nil) {
		sc.clientAborted = true
	}
	decision := sc.decision
	if decision == gpconnect.DecisionForwarded && (sc.rule == gpconnect.RuleUpstream || sc.clientAborted) {
		decision = gpconnect.DecisionError
	}
	t := &audit.Transaction{
		Time:            s.now(),
		TraceID:         sc.hdr.TraceID,
		Status:          status,
		BytesIn:         cb.n,
		BytesOut:        cw.n,
		UpstreamSeconds: sc.upstream.Seconds(),
		TotalSeconds:    total.Seconds(),
		ClientAborted:   sc.clientAborted,
		Decision:        decision,
		Rule:            sc.rule,
		From:            sc.hdr.From,
		To:              sc.hdr.To,
		Interaction:     sc.hdr.InteractionID,
		Reason:          sc.reason,
		Fault:           fault,
	}
	if t.TraceID == "" {
		t.TraceID = rawHeader(r, "Ssp-TraceID")
	}
	answerFacts(t, sc, cw.Header())
	if err := s.audit.QueueTransaction(t); err != nil {
		s.log.Error("transaction record not written", "trace_id", t.TraceID, "err", err)
	}
	s.metrics.Request(sc.hdr.InteractionID, decision, sc.rule, total.Seconds())
	if sc.upstream > 0 {
		s.metrics.Upstream(sc.upstream.Seconds())
	}
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.Debug("request", "trace_id", t.TraceID, "method", r.Method, "target", sc.target.Raw,
			"status", status, "decision", decision, "rule", sc.rule, "seconds", total.Seconds())
	}
	s.publish(r, sc, cw, t)
}

// checkMethod passes GET, POST and PUT, answers the CORS preflight itself
// and refuses every other verb, CONNECT included, with the SSP's 405.
func (s *Server) checkMethod(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodPost, http.MethodPut:
			next.ServeHTTP(w, r)
		case http.MethodOptions:
			s.preflight(w, r)
		default:
			reason := fmt.Sprintf("the SSP passes only GET, POST and PUT (and answers OPTIONS); %s is not one of them", r.Method)
			if r.Method == http.MethodConnect {
				reason = "the SSP does not tunnel (CONNECT) and is not a forward proxy: use the prefix form, " + prefixHint
			}
			s.refuse(w, r, &gpconnect.Refusal{Rule: gpconnect.RuleMethod, Status: http.StatusMethodNotAllowed,
				Shape: gpconnect.ShapeSSP, Token: "405: Method Not Allowed", Reason: reason, Allow: "GET, POST, PUT, OPTIONS"})
		}
	})
}

// checkTarget takes the target URL from the raw request URI.
func (s *Server) checkTarget(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := scopeFrom(r.Context())
		t, err := ParseTarget(r.RequestURI)
		if err != nil {
			s.refuse(w, r, refusal(gpconnect.RuleTarget, http.StatusBadRequest, gpconnect.CodeBadRequest, err.Error()))
			return
		}
		sc.target, sc.targetOK = t, true
		if t.Repaired {
			sc.note("collapsed https:/ in the target repaired to https://")
			s.log.Info("repaired a collapsed https:/ in the target", "target", t.Raw)
		}
		next.ServeHTTP(w, r)
	})
}

// checkSspHeaders checks the Ssp-* headers are present and well formed.
func (s *Server) checkSspHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := scopeFrom(r.Context())
		h, herr := gpconnect.ParseSspHeaders(r.Header)
		sc.hdr = h
		if herr != nil {
			s.refuse(w, r, refusal(gpconnect.RuleSSPHeaders, http.StatusBadRequest, gpconnect.CodeBadRequest, herr.Reason))
			return
		}
		sc.interaction, sc.known = gpconnect.Lookup(h.InteractionID)
		next.ServeHTTP(w, r)
	})
}

// checkRegistry asks the registry's decision: certificate and Ssp-From,
// sender, receiver, endpoint and data-sharing agreement, first failure wins.
func (s *Server) checkRegistry(next http.Handler) http.Handler {
	fidelity := agreements.Fidelity(s.cfg.Fidelity)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := scopeFrom(r.Context())
		d := sc.table.Decide(agreements.Request{
			From:          sc.hdr.From,
			To:            sc.hdr.To,
			InteractionID: sc.hdr.InteractionID,
			Target:        sc.target.Raw,
			CertNames:     sc.names,
			Now:           sc.start,
		}, fidelity)
		if !d.Allowed() {
			s.refuse(w, r, d.Refusal())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkJWT decodes the bearer token for the audit in every mode, and in
// enforce mode refuses a token a provider would refuse.
func (s *Server) checkJWT(next http.Handler) http.Handler {
	policy := gpconnect.JWTPolicy{Skew: s.cfg.JWTSkew}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := scopeFrom(r.Context())
		authz := r.Header.Get("Authorization")
		if s.cfg.JWT == ModeOff {
			sc.token, _ = gpconnect.ParseAuthorization(authz)
			next.ServeHTTP(w, r)
			return
		}
		tok, cerr := policy.CheckAuthorization(authz, sc.interaction, sc.start)
		// The registry rules passed, so Ssp-To has a registered endpoint.
		to, _ := sc.table.System(sc.hdr.To)
		if cerr == nil {
			cerr = gpconnect.CheckAudience(tok, to.Endpoint)
		}
		sc.claims = claimVerdicts(policy, tok, cerr, authz, sc.interaction, to.Endpoint, sc.start)
		if tok != nil {
			sc.token = tok
		} else {
			sc.token, _ = gpconnect.ParseAuthorization(authz)
		}
		if cerr != nil {
			reason := fmt.Sprintf("JWT claim %s: %s", cerr.Claim, cerr.Reason)
			if s.cfg.JWT == ModeLog {
				sc.note("jwt (logged, not enforced): %s", reason)
			} else {
				code := gpconnect.CodeBadRequest
				if cerr.Status == http.StatusUnprocessableEntity {
					code = gpconnect.CodeInvalidResource
				}
				s.refuse(w, r, refusal(gpconnect.RuleJWT, cerr.Status, code, reason))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// passedClaims is the verdicts of a token that passed every rule. It is
// shared by the records of all such requests, which only read it.
var passedClaims, passedClaimsRecord = func() ([]audit.ClaimVerdict, []audit.ClaimVerdict) {
	var out []audit.ClaimVerdict
	for _, name := range gpconnect.ClaimNames() {
		out = append(out, audit.ClaimVerdict{Claim: name, Verdict: gpconnect.VerdictPassed})
	}
	return out, append(out[:len(out):len(out)], audit.ClaimVerdict{Claim: gpconnect.ClaimRequestedRecord, Verdict: gpconnect.VerdictPassed})
}()

// claimVerdicts is each claim's verdict for the audit record. A token that
// passed (the common case) passed on every claim, so nothing is judged
// again; only a failing token, which the rules name one claim of, is judged
// claim by claim (gpconnect.JWTPolicy.Verdicts, the console's judging), so
// the request path stays as lean as before for the good calls.
func claimVerdicts(policy gpconnect.JWTPolicy, tok *gpconnect.Token, cerr *gpconnect.ClaimError, authz string, in gpconnect.Interaction, root string, now time.Time) []audit.ClaimVerdict {
	if cerr == nil && tok != nil {
		if tok.Claims.RequestedRecord != nil {
			return passedClaimsRecord
		}
		return passedClaims
	}
	tv := policy.Verdicts(authz, in, root, now)
	var out []audit.ClaimVerdict
	if e := tv.Envelope; e != nil {
		out = append(out, audit.ClaimVerdict{Claim: e.Name, Verdict: e.Verdict, Reason: e.Reason})
	}
	for _, c := range tv.Claims {
		out = append(out, audit.ClaimVerdict{Claim: c.Name, Verdict: c.Verdict, Reason: c.Reason})
	}
	return out
}

// checkInteraction matches Ssp-InteractionID with the verb and the path
// below the provider's service root.
func (s *Server) checkInteraction(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := scopeFrom(r.Context())
		if s.cfg.InteractionRoute == ModeOff {
			next.ServeHTTP(w, r)
			return
		}
		rel := relativePath(sc)
		if !sc.interaction.MatchesRoute(r.Method, rel) {
			reason := routeReason(sc, r.Method, rel)
			if s.cfg.InteractionRoute == ModeLog {
				sc.note("interaction-route (logged, not enforced): %s", reason)
			} else {
				s.refuse(w, r, refusal(gpconnect.RuleInteractionRoute, http.StatusBadRequest, gpconnect.CodeBadRequest, reason))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// relativePath is the target's path below the registered service root of
// Ssp-To (the endpoint rule has already proved the target starts with it).
func relativePath(sc *scope) string {
	sys, ok := sc.table.System(sc.hdr.To)
	if !ok {
		return sc.target.Path
	}
	root := strings.TrimPrefix(sys.Endpoint, "https://")
	if i := strings.IndexByte(root, '/'); i >= 0 {
		return strings.TrimPrefix(sc.target.Path, root[i:])
	}
	return sc.target.Path
}

func routeReason(sc *scope, method, rel string) string {
	in := sc.interaction
	msg := fmt.Sprintf("Ssp-InteractionID %s (%s) is sent as %s <service root>%s, but this request is %s <service root>%s",
		in.ID, in.Name, in.Method, in.Path, method, rel)
	if fits := gpconnect.Route(method, rel); len(fits) > 0 {
		ids := make([]string, len(fits))
		for i, f := range fits {
			ids[i] = f.ID
		}
		msg += "; for this verb and path send Ssp-InteractionID " + strings.Join(ids, " or ")
	} else {
		msg += "; no GP Connect interaction has this verb and path"
	}
	return msg
}

// forward reads the whole body (limits), makes the audit record durable,
// then hands the request, rewritten to its absolute target, to the engine.
func (s *Server) forward(w http.ResponseWriter, r *http.Request) {
	if !s.readBody(w, r) {
		return
	}
	sc := scopeFrom(r.Context())
	sc.decision, sc.cleared = gpconnect.DecisionForwarded, true
	if !s.record(w, r, sc) {
		return
	}
	// A shallow copy: the consumer's request is not used again, so its
	// header map is edited in place rather than cloned.
	out := r.WithContext(r.Context())
	out.URL = targetURL(sc.target)
	out.Host = sc.target.Host
	removeHopHeaders(out.Header)
	out.Header.Add("Forwarded", forwardedFor(r.RemoteAddr))
	sc.tap = answerTap{ResponseWriter: w, sc: sc}
	s.handOver(&sc.tap, out)
}

// rawHeader is a header as sent, cut to 200 bytes: for the audit of a
// request whose headers were not, or not well, formed.
func rawHeader(r *http.Request, name string) string { return cut(r.Header.Get(name)) }

// cut bounds what the SSP's records copy from a request or an answer as
// sent to 200 bytes.
func cut(v string) string { return cutTo(v, 200) }

// cutTo cuts a value copied into a record to n bytes.
func cutTo(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// headerOrNil is a header as sent, cut to 200 bytes, or nil when it was
// not sent: the audit tells an absent header from an empty one.
func headerOrNil(r *http.Request, name string) *string {
	vs, ok := r.Header[name]
	if !ok || len(vs) == 0 {
		return nil
	}
	v := strings.Join(vs, ", ")
	if len(v) > 200 {
		v = v[:200]
	}
	return &v
}

func rawQueryOf(requestURI string) string {
	if _, q, ok := strings.Cut(requestURI, "?"); ok {
		return q
	}
	return ""
}

// auditRecord is the durable record of the decision in sc, built as the
// practices build theirs (audit.NewRecord), with the members of record
// version 2 that only the SSP records.
func (s *Server) auditRecord(r *http.Request, sc *scope) *audit.Record {
	reason := sc.reason
	if len(sc.notes) > 0 {
		if reason != "" {
			reason += "; "
		}
		reason += strings.Join(sc.notes, "; ")
	}
	rec := audit.NewRecord(r, audit.Decided{
		Start:             sc.start,
		Headers:           sc.hdr,
		Target:            sc.target.Raw,
		ClientSubject:     sc.subject,
		ClientFingerprint: sc.fingerprint,
		Token:             sc.token,
		Bound:             cut,
		Decision:          sc.decision,
		Rule:              sc.rule,
		Status:            sc.status,
		SSPToken:          sc.sspToken,
		Reason:            reason,
		Fault:             sc.fault,
	})
	rec.V = audit.RecordVersion
	rec.Proto = r.Proto
	rec.Accept = headerOrNil(r, "Accept")
	rec.ContentType = headerOrNil(r, "Content-Type")
	rec.AcceptEncoding = headerOrNil(r, "Accept-Encoding")
	rec.TransferEncoding = strings.Join(r.TransferEncoding, ",")
	rec.Claims = sc.claims
	if r.TLS != nil {
		rec.TLSVersion = tls.VersionName(r.TLS.Version)
		rec.TLSCipher = cipherSuiteName(r.TLS.CipherSuite)
		rec.ClientIssuer, rec.ClientSerial, rec.ClientNotAfter = sc.issuer, sc.serial, sc.notAfter
	}
	rec.IfMatch = headerOrNil(r, "If-Match")
	rec.Body = summariseBody(r.Method, r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding"), sc.body)
	return rec
}
