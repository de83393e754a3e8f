package console

import (
	"time"

	"sspemu/gpconnect"
)

// jwtView is the decoded bearer token with a verdict per claim.
type jwtView struct {
	Mode string `json:"mode"` // ssp.jwt when the request was judged
	// Envelope is set when the Authorization header or the JWT around the
	// claims is wrong, so no claim could be read.
	Envelope *claimVerdict  `json:"envelope,omitempty"`
	Claims   []claimVerdict `json:"claims"`
	// Complete is false when judging stopped before every claim had a
	// verdict; the claims without one say "not judged".
	Complete bool `json:"complete"`
}

// claimVerdict is one claim's value as sent and what the rules say of it.
type claimVerdict = gpconnect.ClaimVerdict

const verdictNotJudged = gpconnect.VerdictNotJudged

// judgeToken gives every claim of the token in authz its own verdict, by
// gpconnect's JWTPolicy.Verdicts (the logic lived here until the audit and
// the report needed the same verdicts). It runs on the console's
// goroutine, never on the request's.
func judgeToken(authz string, in gpconnect.Interaction, serviceRoot string, skew time.Duration, now time.Time) jwtView {
	tv := gpconnect.JWTPolicy{Skew: skew}.Verdicts(authz, in, serviceRoot, now)
	return jwtView{Envelope: tv.Envelope, Claims: tv.Claims, Complete: tv.Complete}
}

// claimOrder is the claims every readable token is judged on.
var claimOrder = gpconnect.ClaimNames()
