package proxy

import (
	"encoding/json"
	"errors"
	"net/http"

	"sspemu/faults"
	"sspemu/gpconnect"
)

// checkFaults lets the fault rules at: ssp act on a request that passed
// every check, before it is audited and forwarded: a delay waits and then
// forwards; a status answers in the SSP's own refusal shape (rule fault)
// and a reset closes the connection unanswered, both without the request
// ever reaching the provider. With faults.header on, an Sspemu-Fault
// header naming a rule that is not loaded is a 400 that says so. Every
// request a rule acted on carries the rules' names in its audit and
// transaction records (fault) and in the Sspemu-Fault answer header.
func (s *Server) checkFaults(next http.Handler) http.Handler {
	if s.faults == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := scopeFrom(r.Context())
		d, err := s.faults.Match(faults.AtSSP, s.faultView(r, sc), r.Header.Get(faults.Header))
		var unknown *faults.UnknownRuleError
		if errors.As(err, &unknown) {
			s.refuse(w, r, refusal(gpconnect.RuleFault, http.StatusBadRequest, gpconnect.CodeBadRequest, unknown.Error()))
			return
		}
		if d == nil {
			next.ServeHTTP(w, r)
			return
		}
		sc.fault = d.Fault()
		w.Header().Set(faults.Header, sc.fault)
		if err := faults.Sleep(r.Context(), d.Delay); err != nil {
			// The consumer left during the delay: nothing is answered,
			// and the record says why.
			sc.decision, sc.rule, sc.reason = gpconnect.DecisionError, gpconnect.RuleFault, d.Reason()+"; the consumer closed the connection during the delay"
			s.record(w, r, sc)
			return
		}
		switch {
		case d.Status != nil:
			sys, _ := sc.table.System(sc.hdr.To)
			s.refuse(w, r, d.Status.Refusal(faults.TokenValues{
				From: sc.hdr.From, To: sc.hdr.To, Target: sc.target.Raw, Endpoint: sys.Endpoint, CPAID: sys.CPAID,
			}))
			return
		case d.Reset:
			sc.decision, sc.rule, sc.reason, sc.reset = gpconnect.DecisionError, gpconnect.RuleFault, d.Reason(), true
			if !s.record(w, r, sc) {
				return // answered 503: the SSP does not act unaudited
			}
			if err := faults.Reset(w); err != nil {
				panic(http.ErrAbortHandler)
			}
			return
		}
		sc.note("%s", d.Reason())
		next.ServeHTTP(w, r)
	})
}

// faultView is the request as a fault rule sees it: the path below the
// provider's service root, and the body only when a rule asks for an NHS
// number (it is put back whole for the forward).
func (s *Server) faultView(r *http.Request, sc *scope) faults.View {
	v := faults.View{
		Interaction: sc.hdr.InteractionID,
		From:        sc.hdr.From,
		To:          sc.hdr.To,
		Method:      r.Method,
		Path:        relativePath(sc),
		Query:       sc.target.RawQuery,
	}
	if !s.faults.NeedsBody(faults.AtSSP) {
		return v
	}
	// A body that cannot be read is left to the forward, which reports it;
	// the rule sees what arrived.
	v.Body, _ = faults.PeekBody(r, faults.MaxPeek)
	if sc.token != nil && sc.token.Claims.RequestedRecord != nil {
		v.RequestedRecord, _ = json.Marshal(sc.token.Claims.RequestedRecord)
	}
	return v
}
