package console

import (
	"net/http"
	"slices"
	"time"

	"sspemu/gpconnect"
	"sspemu/proxy"
)

// The kinds of entry: a request that reached the chain, or a TLS handshake
// the SSP refused before any request.
const (
	kindRequest = "request"
	kindTLS     = "tls"
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
}

func journeyEntry(j *proxy.Journey, now func() time.Time) (summary, detail) {
	s := summary{
		Kind:            kindRequest,
		Time:            j.Time,
		TraceID:         j.TraceID,
		From:            j.From,
		To:              j.To,
		Interaction:     j.Interaction,
		InteractionName: j.InteractionName,
		Method:          j.Method,
		Status:          j.Status,
		Outcome:         j.Decision,
		Rule:            j.Rule,
		Token:           j.Token,
		Reason:          j.Reason,
		Client:          j.Client,
		TotalSeconds:    j.TotalSeconds,
	}
	at := j.Time
	if at.IsZero() {
		at = now()
	}
	in, _ := gpconnect.Lookup(j.Interaction)
	d := detail{summary: s, Steps: j.Steps, Journey: j}
	if j.Authorization != "" || j.Rule == "jwt" {
		v := judgeToken(j.Authorization, in, j.ServiceRoot, j.JWTSkew, at)
		v.Mode = j.JWTMode
		d.JWT = &v
	}
	if d.Journey.RequestHeader == nil {
		d.Journey.RequestHeader = http.Header{}
	}
	if j.Authorization != "" {
		// The token is shown decoded, below; its raw form stays here.
		d.Journey.RequestHeader.Set("Authorization", "Bearer <unsigned JWT, decoded under Token>")
	}
	return s, d
}

func handshakeEntry(h *proxy.Handshake) (summary, detail) {
	s := summary{
		Kind:    kindTLS,
		Time:    h.Time,
		Outcome: kindTLS,
		Rule:    "tls",
		Token:   h.Reason,
		Reason:  h.Advice,
		Client:  h.Client,
	}
	steps := []proxy.Step{{Actor: proxy.ActorSSP, Name: "tls", Verdict: proxy.VerdictFailed, Token: h.Reason, Detail: h.Advice + " (" + h.Detail + ")"}}
	for _, rule := range proxy.RuleOrder[1:] {
		if rule == "limits" || rule == "fault" {
			continue
		}
		steps = append(steps, proxy.Step{Actor: proxy.ActorSSP, Name: rule, Verdict: proxy.VerdictNotRun})
	}
	steps = append(steps, proxy.Step{Actor: proxy.ActorPractice, Name: "provider", Verdict: proxy.VerdictNotRun})
	return s, detail{summary: s, Steps: slices.Clip(steps), Handshake: h}
}
