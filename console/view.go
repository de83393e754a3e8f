package console

import (
	"net/http"
	"time"

	"sspemu/gpconnect"
	"sspemu/proxy"
	"sspemu/spinecall"
)

// The kinds of entry: a request that reached the chain, or a TLS handshake
// the SSP refused before any request.
const (
	kindRequest = "request"
	kindTLS     = string(gpconnect.RuleTLS)
)

// summary is one row of the live list, as the stream sends it.
type summary struct {
	ID              uint64    `json:"id"`
	Kind            string    `json:"kind"`
	Time            time.Time `json:"time"`
	TraceID         string    `json:"trace_id"`
	From            string    `json:"from"`
	To              string    `json:"to"`
	Interaction     string    `json:"interaction"`
	InteractionName string    `json:"interaction_name,omitempty"`
	Method          string    `json:"method,omitempty"`
	Status          int       `json:"status"`
	Outcome         string    `json:"outcome"` // the decision, or "tls"
	Rule            string    `json:"rule"`
	Token           string    `json:"token"`
	Reason          string    `json:"reason"`
	Request         string    `json:"request,omitempty"` // a Spine call's path and query, or LDAP base and filter
	Results         *int      `json:"results,omitempty"` // a Spine call's records
	Client          string    `json:"client"`
	TotalSeconds    float64   `json:"total_seconds"`
}

// detail is what a click on a row shows: the summary, the steps of the
// journey in order, and for a request the journey itself and its token.
type detail struct {
	summary
	Steps     []proxy.Step     `json:"steps"`
	Journey   *proxy.Journey   `json:"journey,omitempty"`
	JWT       *jwtView         `json:"jwt,omitempty"`
	Handshake *proxy.Handshake `json:"handshake,omitempty"`
	Spine     *spinecall.Call  `json:"spine,omitempty"`
}

func journeySummary(id uint64, j *proxy.Journey) summary {
	return summary{
		ID:              id,
		Kind:            kindRequest,
		Time:            j.Time,
		TraceID:         j.TraceID,
		From:            j.From,
		To:              j.To,
		Interaction:     j.Interaction,
		InteractionName: j.InteractionName,
		Method:          j.Method,
		Status:          j.Status,
		Outcome:         string(j.Decision),
		Rule:            string(j.Rule),
		Token:           j.Token,
		Reason:          j.Reason,
		Client:          j.Client,
		TotalSeconds:    j.TotalSeconds,
	}
}

func journeyDetail(id uint64, j *proxy.Journey) detail {
	d := detail{summary: journeySummary(id, j), Steps: j.Steps}
	if j.Authorization != "" || j.Rule == gpconnect.RuleJWT {
		in, _ := gpconnect.Lookup(j.Interaction)
		v := judgeToken(j.Authorization, in, j.ServiceRoot, j.JWTSkew, j.Time)
		v.Mode = j.JWTMode
		d.JWT = &v
	}
	// A copy, so the kept journey is never written: the token is shown
	// decoded, under Token, and its raw form stays in the process.
	shown := *j
	shown.RequestHeader = j.RequestHeader.Clone()
	if shown.RequestHeader == nil {
		shown.RequestHeader = http.Header{}
	}
	if j.Authorization != "" {
		shown.RequestHeader.Set("Authorization", "Bearer <unsigned JWT, decoded under Token>")
	}
	d.Journey = &shown
	return d
}

func handshakeSummary(id uint64, h *proxy.Handshake) summary {
	return summary{
		ID:      id,
		Kind:    kindTLS,
		Time:    h.Time,
		Outcome: kindTLS,
		Rule:    string(gpconnect.RuleTLS),
		Token:   h.Reason,
		Reason:  h.Advice,
		Client:  h.Client,
	}
}

func handshakeDetail(id uint64, h *proxy.Handshake) detail {
	steps := []proxy.Step{{Actor: proxy.ActorSSP, Name: string(gpconnect.RuleTLS), Verdict: proxy.VerdictFailed, Token: h.Reason, Detail: h.Advice + " (" + h.Detail + ")"}}
	for _, rule := range proxy.RuleOrder[1:] {
		if rule == gpconnect.RuleLimits || rule == gpconnect.RuleFault {
			continue // listed only when they act
		}
		steps = append(steps, proxy.Step{Actor: proxy.ActorSSP, Name: string(rule), Verdict: proxy.VerdictNotRun})
	}
	steps = append(steps, proxy.Step{Actor: proxy.ActorPractice, Name: "provider", Verdict: proxy.VerdictNotRun})
	return detail{summary: handshakeSummary(id, h), Steps: steps, Handshake: h}
}

// spineSummary is a consumer's call to SDS or PDS: its kind (and outcome,
// for the outcome filter) is the service, it has no ASIDs, and its
// correlation or request ID stands as its trace ID.
func spineSummary(id uint64, c *spinecall.Call) summary {
	results := c.Results
	trace := c.CorrelationID
	if trace == "" {
		trace = c.RequestID
	}
	return summary{
		ID:           id,
		Kind:         c.Service,
		Time:         c.Time,
		TraceID:      trace,
		Method:       c.Method,
		Status:       c.Status,
		Outcome:      c.Service,
		Token:        c.Result,
		Request:      c.Request,
		Results:      &results,
		Client:       c.Client,
		TotalSeconds: c.Seconds,
	}
}

// spineDetail shows the call as one step on the service's lifeline.
func spineDetail(id uint64, c *spinecall.Call) detail {
	actor := c.Service
	if actor == spinecall.LDAP {
		actor = spinecall.SDS
	}
	st := proxy.Step{Actor: actor, Name: c.Method + " " + c.Request, Verdict: proxy.VerdictPassed, Status: c.Status}
	if c.Service == spinecall.LDAP {
		st.Status = 0 // an LDAP result code is not an HTTP status
		st.Detail = c.Result
		if c.Status != 0 {
			st.Verdict = proxy.VerdictFailed
		}
	} else if c.Status >= 400 {
		st.Verdict = proxy.VerdictFailed
	}
	return detail{summary: spineSummary(id, c), Steps: []proxy.Step{st}, Spine: c}
}
