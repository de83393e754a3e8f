package audit

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// The encoders below write Record and Transaction without reflection,
// because json.Marshal was a noticeable part of the CPU the proxy spends per
// request. The hash chain covers the exact bytes, and Verify and readers
// of old files expect the shape json.Marshal gave, so each encoder must
// produce byte for byte what json.Marshal produces: the same field order,
// omitempty, HTML-safe string escaping, float and time formatting. The
// differential and fuzz tests in encode_test.go hold them to that.

// appendRecord appends r as json.Marshal would encode it. It reports false,
// with dst unchanged, when json.Marshal would fail instead (a time outside
// the years 0 to 9999), so the caller can ask json.Marshal for the error.
func appendRecord(dst []byte, r *Record) ([]byte, bool) {
	start := len(dst)
	dst = append(dst, `{"time":`...)
	dst, ok := appendTime(dst, r.Time)
	if !ok {
		return dst[:start], false
	}
	dst = append(dst, `,"trace_id":`...)
	dst = appendString(dst, r.TraceID)
	dst = append(dst, `,"from":`...)
	dst = appendString(dst, r.From)
	dst = append(dst, `,"to":`...)
	dst = appendString(dst, r.To)
	dst = append(dst, `,"interaction":`...)
	dst = appendString(dst, r.Interaction)
	dst = append(dst, `,"method":`...)
	dst = appendString(dst, r.Method)
	dst = append(dst, `,"target":`...)
	dst = appendString(dst, r.Target)
	dst = append(dst, `,"client_subject":`...)
	dst = appendString(dst, r.ClientSubject)
	dst = append(dst, `,"client_fingerprint":`...)
	dst = appendString(dst, r.ClientFingerprint)
	if j := r.JWT; j != nil {
		dst = append(dst, `,"jwt":{"iss":`...)
		dst = appendString(dst, j.Issuer)
		dst = append(dst, `,"sub":`...)
		dst = appendString(dst, j.Subject)
		dst = append(dst, `,"sds_user_id":`...)
		dst = appendString(dst, j.SDSUserID)
		dst = append(dst, `,"role_profile_id":`...)
		dst = appendString(dst, j.RoleProfileID)
		dst = append(dst, `,"ods":`...)
		dst = appendString(dst, j.ODSCode)
		dst = append(dst, `,"device":`...)
		dst = appendString(dst, j.Device)
		dst = append(dst, '}')
	}
	dst = append(dst, `,"decision":`...)
	dst = appendString(dst, string(r.Decision))
	dst = append(dst, `,"rule":`...)
	dst = appendString(dst, string(r.Rule))
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	dst = append(dst, `,"token":`...)
	dst = appendString(dst, r.Token)
	dst = append(dst, `,"reason":`...)
	dst = appendString(dst, r.Reason)
	if r.Fault != "" {
		dst = append(dst, `,"fault":`...)
		dst = appendString(dst, r.Fault)
	}
	if r.V != 0 {
		dst = append(dst, `,"v":`...)
		dst = strconv.AppendInt(dst, int64(r.V), 10)
	}
	dst = appendOptString(dst, `,"tls_version":`, r.TLSVersion)
	dst = appendOptString(dst, `,"tls_cipher":`, r.TLSCipher)
	dst = appendOptString(dst, `,"proto":`, r.Proto)
	for _, h := range [...]struct {
		key string
		v   *string
	}{{`,"accept":`, r.Accept}, {`,"content_type":`, r.ContentType}, {`,"accept_encoding":`, r.AcceptEncoding}} {
		if h.v != nil {
			dst = append(dst, h.key...)
			dst = appendString(dst, *h.v)
		}
	}
	dst = appendOptString(dst, `,"transfer_encoding":`, r.TransferEncoding)
	if len(r.Claims) > 0 {
		dst = append(dst, `,"jwt_claims":[`...)
		for i := range r.Claims {
			c := &r.Claims[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"claim":`...)
			dst = appendString(dst, c.Claim)
			dst = append(dst, `,"verdict":`...)
			dst = appendString(dst, c.Verdict)
			dst = appendOptString(dst, `,"reason":`, c.Reason)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = appendOptString(dst, `,"client_issuer":`, r.ClientIssuer)
	dst = appendOptString(dst, `,"client_serial":`, r.ClientSerial)
	dst = appendOptString(dst, `,"client_not_after":`, r.ClientNotAfter)
	if r.IfMatch != nil {
		dst = append(dst, `,"if_match":`...)
		dst = appendString(dst, *r.IfMatch)
	}
	if r.Body != nil {
		// Only a POST or PUT has one, off the hot path of GET: json.Marshal
		// encodes it as it would inside the record (it cannot fail on a
		// Body, which holds only strings, numbers and booleans).
		b, err := json.Marshal(r.Body)
		if err != nil {
			return dst[:start], false
		}
		dst = append(dst, `,"body":`...)
		dst = append(dst, b...)
	}
	dst = append(dst, '}')
	return dst, true
}

// appendOptString appends key and s, as an omitempty string member, unless
// s is empty.
func appendOptString(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	dst = append(dst, key...)
	return appendString(dst, s)
}

// appendTransaction appends t as json.Marshal would encode it. It reports
// false, with dst unchanged, when json.Marshal would fail instead (a time
// outside the years 0 to 9999, or a NaN or infinite duration), so the
// caller can ask json.Marshal for the error.
func appendTransaction(dst []byte, t *Transaction) ([]byte, bool) {
	if !jsonFloat(t.UpstreamSeconds) || !jsonFloat(t.TotalSeconds) {
		return dst, false
	}
	start := len(dst)
	if t.Seq != 0 {
		dst = append(dst, `{"seq":`...)
		dst = strconv.AppendUint(dst, t.Seq, 10)
		dst = append(dst, `,"time":`...)
	} else {
		dst = append(dst, `{"time":`...)
	}
	dst, ok := appendTime(dst, t.Time)
	if !ok {
		return dst[:start], false
	}
	dst = append(dst, `,"trace_id":`...)
	dst = appendString(dst, t.TraceID)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(t.Status), 10)
	dst = append(dst, `,"bytes_in":`...)
	dst = strconv.AppendInt(dst, t.BytesIn, 10)
	dst = append(dst, `,"bytes_out":`...)
	dst = strconv.AppendInt(dst, t.BytesOut, 10)
	dst = append(dst, `,"upstream_seconds":`...)
	dst = appendFloat(dst, t.UpstreamSeconds)
	dst = append(dst, `,"total_seconds":`...)
	dst = appendFloat(dst, t.TotalSeconds)
	dst = append(dst, `,"client_aborted":`...)
	dst = strconv.AppendBool(dst, t.ClientAborted)
	dst = append(dst, `,"decision":`...)
	dst = appendString(dst, string(t.Decision))
	dst = append(dst, `,"rule":`...)
	dst = appendString(dst, string(t.Rule))
	dst = append(dst, `,"from":`...)
	dst = appendString(dst, t.From)
	dst = append(dst, `,"to":`...)
	dst = appendString(dst, t.To)
	dst = append(dst, `,"interaction":`...)
	dst = appendString(dst, t.Interaction)
	if t.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = appendString(dst, t.Reason)
	}
	if t.Fault != "" {
		dst = append(dst, `,"fault":`...)
		dst = appendString(dst, t.Fault)
	}
	if t.AuditSeq != 0 {
		dst = append(dst, `,"audit_seq":`...)
		dst = strconv.AppendUint(dst, t.AuditSeq, 10)
	}
	dst = appendOptString(dst, `,"resp_content_type":`, t.RespContentType)
	dst = appendOptString(dst, `,"resp_content_encoding":`, t.RespContentEncoding)
	dst = appendOptString(dst, `,"provider_code":`, t.ProviderCode)
	dst = appendOptString(dst, `,"provider_issue_code":`, t.ProviderIssueCode)
	if t.Entries != nil {
		dst = append(dst, `,"entries":`...)
		dst = strconv.AppendInt(dst, int64(*t.Entries), 10)
	}
	if len(t.EntryTypes) > 0 {
		dst = appendCounts(dst, `,"entry_types":{`, t.EntryTypes)
	}
	dst = appendOptString(dst, `,"location":`, t.Location)
	dst = appendOptString(dst, `,"etag":`, t.ETag)
	dst = append(dst, '}')
	return dst, true
}

// appendCounts appends key and m as json.Marshal writes a map[string]int:
// the keys sorted, each escaped as a string. key ends in the opening brace.
func appendCounts(dst []byte, key string, m map[string]int) []byte {
	dst = append(dst, key...)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, int64(m[k]), 10)
	}
	return append(dst, '}')
}

// appendHead appends the content of a head file naming record seq with hash
// in file, byte for byte what head.encode renders (json.Marshal of the
// head, padded with spaces to headSize and ending in a newline). The writer
// updates the head after every batch, so it builds it in place instead.
func appendHead(dst []byte, file string, seq uint64, hash *[32]byte) []byte {
	start := len(dst)
	dst = append(dst, `{"file":`...)
	dst = appendString(dst, file)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"hash":"`...)
	dst = hex.AppendEncode(dst, hash[:])
	dst = append(dst, `"}`...)
	for len(dst)-start < headSize {
		dst = append(dst, ' ')
	}
	dst = dst[:start+headSize]
	dst[len(dst)-1] = '\n'
	return dst
}

// appendTime appends t quoted as time.Time's MarshalJSON writes it;
// AppendText shares its formatting (RFC 3339 with nanoseconds and the same
// range checks) without allocating. It reports false, with dst possibly
// extended, when MarshalJSON would fail.
func appendTime(dst []byte, t time.Time) ([]byte, bool) {
	dst = append(dst, '"')
	b, err := t.AppendText(dst)
	if err != nil {
		return dst, false
	}
	return append(b, '"'), true
}

// jsonFloat reports whether json.Marshal can encode f: it refuses NaN and
// the infinities.
func jsonFloat(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// appendFloat appends f as encoding/json writes a float64 (like ES6's
// number to string): the shortest representation, in exponent form only
// below 1e-6 or from 1e21, with a one-digit negative exponent unpadded. f
// must satisfy jsonFloat.
func appendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Like encoding/json, turn e-09 into e-9.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// hexDigits are the digits of encoding/json's \u escapes, lowercase like
// its own.
const hexDigits = "0123456789abcdef"

// appendString appends s quoted as json.Marshal writes a string with its
// default HTML escaping: ", \ and the control characters escaped (\b, \f,
// \n, \r and \t by name), <, > and & as \u003c, \u003e and \u0026, U+2028
// and U+2029 escaped for JavaScript, and every byte of invalid UTF-8
// replaced by \ufffd. It copies runs of safe bytes in one append.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if jsonSafe(b) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// safeLow and safeHigh are the bit sets of the ASCII bytes 0-63 and 64-127
// that encoding/json copies into a string as they are when it escapes HTML:
// all but the control characters, ", \, <, > and &.
const (
	safeLow  = 1<<64 - 1<<' ' - (1<<'"' | 1<<'&' | 1<<'<' | 1<<'>')
	safeHigh = 1<<64 - 1 - 1<<('\\'-64)
)

// jsonSafe reports whether the ASCII byte b goes into a JSON string as it
// is; a bit test rather than a chain of comparisons, as strings are mostly
// such bytes.
func jsonSafe(b byte) bool {
	set := uint64(safeLow)
	if b >= 64 {
		set = safeHigh
	}
	return set>>(b&63)&1 != 0
}
