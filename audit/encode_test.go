package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"sspemu/gpconnect"
)

// encodeStrings are strings chosen to reach every branch of encoding/json's
// string escaping: each ASCII byte, the HTML-escaped ones, the JavaScript
// line separators and their neighbours, and the kinds of invalid UTF-8.
func encodeStrings() []string {
	ss := []string{
		"", "a", "forwarded", "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1",
		"https://localhost:9443/A20047/STU3/1/gpconnect/metadata?x=<a>&b=\"c\"",
		`back\slash`, "tab\there", "new\nline", "cr\rlf\n", "\b\f", "\x00\x01\x1f\x7f",
		"<script>alert('x')</script>", "a&b", "\u2027\u2028\u2029\u202a", "x\u2028", "\u2029",
		"é", "日本語", "😀", "\uFFFD", "\uFEFF", "\U0010FFFF",
		"\xff", "\xfe\xff", "a\x80b", "\xc0\x80", "\xc3", "\xe2\x80", "\xe2\x80\xa8\xe2\x80",
		"\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xf0\x9f\x98", "\xf8\x88\x80\x80\x80",
		strings.Repeat("ab", 32), strings.Repeat("<&>", 100), strings.Repeat("é\u2028\xff", 50),
	}
	for b := range 256 {
		ss = append(ss, string([]byte{byte(b)}), "x"+string([]byte{byte(b)})+"y")
	}
	for r := rune(0x7f); r < 0x3000; r += 37 {
		ss = append(ss, string(r))
	}
	return ss
}

// encodeFloats covers encoding/json's switch to exponent form at 1e-6 and
// 1e21 from both sides, the extremes and the exponent clean-up.
func encodeFloats() []float64 {
	fs := []float64{
		0, math.Copysign(0, -1), 1, -1, 0.1, 0.000812, 0.00231, 1.5, 123456789.123456789,
		1e-6, math.Nextafter(1e-6, 0), math.Nextafter(1e-6, 1), 1e-7, 1e-9, 1.5e-10, 1e-100,
		1e21, math.Nextafter(1e21, 0), math.Nextafter(1e21, math.Inf(1)), 1e20, 1e22, 1e100,
		math.MaxFloat64, math.SmallestNonzeroFloat64, -math.MaxFloat64, -math.SmallestNonzeroFloat64,
		math.MaxInt64, 1 << 53, 1<<53 + 1, 3.0e-5, 12e-7, 9.999999999999999e20,
	}
	for _, f := range fs[:len(fs):len(fs)] {
		fs = append(fs, -f)
	}
	return fs
}

// encodeTimes covers time.Time's MarshalJSON: the zero time, fractions
// with trailing zeros, the ends of the years 0 to 9999 and beyond them
// (where it fails), and zones, including offsets it refuses.
func encodeTimes() []time.Time {
	var ts []time.Time
	zones := []*time.Location{
		time.UTC, time.Local, time.FixedZone("", 0), time.FixedZone("A", 3600), time.FixedZone("B", -(9*3600 + 30*60)),
		time.FixedZone("C", 23*3600+59*60), time.FixedZone("D", 24*3600), time.FixedZone("E", -24*3600),
		time.FixedZone("F", 3600+30), time.FixedZone("G", 100*3600),
	}
	base := []time.Time{
		{},
		time.Unix(0, 0),
		time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2025, 1, 2, 3, 4, 5, 120000000, time.UTC),
		time.Date(2025, 1, 2, 3, 4, 5, 1, time.UTC),
		time.Date(2025, 1, 2, 3, 4, 5, 999999999, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-12345, 6, 7, 8, 9, 10, 11, time.UTC),
		time.Now(),
	}
	for _, b := range base {
		for _, z := range zones {
			ts = append(ts, b.In(z))
		}
	}
	return ts
}

// checkRecord fails t unless appendRecord agrees with json.Marshal on r:
// the same bytes, or a refusal exactly where json.Marshal fails. It also
// checks that appendRecord only appends.
func checkRecord(t *testing.T, r *Record) {
	t.Helper()
	want, werr := json.Marshal(r)
	prefix := []byte("prefix")
	got, ok := appendRecord(prefix[:len(prefix):len(prefix)], r)
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("appendRecord changed what it appends to: %q", got)
	}
	got = got[len(prefix):]
	switch {
	case werr != nil && ok:
		t.Fatalf("json.Marshal fails (%v) but appendRecord wrote %q for %#v", werr, got, r)
	case werr == nil && !ok:
		t.Fatalf("appendRecord refused what json.Marshal encodes as %q: %#v", want, r)
	case werr == nil && !bytes.Equal(got, want):
		t.Fatalf("appendRecord differs from json.Marshal for %#v\n got %s\nwant %s", r, got, want)
	case !ok && len(got) != 0:
		t.Fatalf("appendRecord refused but left %q", got)
	}
}

// checkTransaction is checkRecord for appendTransaction.
func checkTransaction(t *testing.T, tr *Transaction) {
	t.Helper()
	want, werr := json.Marshal(tr)
	prefix := []byte("prefix")
	got, ok := appendTransaction(prefix[:len(prefix):len(prefix)], tr)
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("appendTransaction changed what it appends to: %q", got)
	}
	got = got[len(prefix):]
	switch {
	case werr != nil && ok:
		t.Fatalf("json.Marshal fails (%v) but appendTransaction wrote %q for %#v", werr, got, tr)
	case werr == nil && !ok:
		t.Fatalf("appendTransaction refused what json.Marshal encodes as %q: %#v", want, tr)
	case werr == nil && !bytes.Equal(got, want):
		t.Fatalf("appendTransaction differs from json.Marshal for %#v\n got %s\nwant %s", tr, got, want)
	case !ok && len(got) != 0:
		t.Fatalf("appendTransaction refused but left %q", got)
	}
}

// recordFrom fills every string field of a Record from ss in turn, so each
// string is tried in each position over a run of cases.
func recordFrom(tm time.Time, ss []string, k, status int, jwt bool) *Record {
	s := func(i int) string { return ss[(k+i)%len(ss)] }
	r := &Record{
		Time: tm, TraceID: s(0), From: s(1), To: s(2), Interaction: s(3), Method: s(4), Target: s(5),
		ClientSubject: s(6), ClientFingerprint: s(7), Decision: gpconnect.Decision(s(8)), Rule: gpconnect.Rule(s(9)), Status: status,
		Token: s(10), Reason: s(11), Fault: s(18),
	}
	// Version 2 members on every other case (odd k and the jwt cases), so
	// both shapes are held to json.Marshal.
	if k%2 == 1 || jwt {
		r.V = k % 3
		r.TLSVersion, r.TLSCipher, r.Proto = s(19), s(20), s(21)
		a, ct, ae := s(22), s(23), s(24)
		switch k % 4 {
		case 0:
			r.Accept, r.ContentType, r.AcceptEncoding = &a, &ct, &ae
		case 1:
			r.Accept = &a
		case 3:
			r.ContentType, r.AcceptEncoding = &ct, &ae
		}
		r.TransferEncoding = s(25)
		for i := range k % 4 {
			r.Claims = append(r.Claims, ClaimVerdict{Claim: s(26 + i), Verdict: s(27 + i), Reason: s(28 + i)})
		}
	}
	// Version 3 members on every third case.
	if k%3 != 1 {
		r.ClientIssuer, r.ClientSerial, r.ClientNotAfter = s(29), s(30), s(31)
	}
	// Version 4 members in several shapes: If-Match absent, empty or set;
	// a body summary that failed, of a registration, of an appointment.
	if k%4 != 0 {
		im := s(32)
		r.IfMatch = &im
	}
	switch k % 5 {
	case 1:
		r.Body = &Body{Format: s(33), Error: s(34)}
	case 2:
		r.Body = &Body{Format: s(33), ResourceType: s(34), Parameters: []string{s(35), s(36)}, Patient: &BodyPatient{
			NHSNumbers: k, NHSNumber: s(37), NHSNumberValid: jwt, NHSNumberStatus: s(38), Names: k % 3, Official: 1, Family: true,
			Gender: s(39), BirthDate: !jwt, Telecoms: 2, TelecomUses: []string{s(40), s(41)}, Addresses: 1, AddressUses: []string{s(42)},
			RegistrationDetails: jwt}}
	case 3:
		r.Body = &Body{Format: s(33), ResourceType: s(34), Appointment: &BodyAppointment{Status: s(35), Slots: k, Participants: 3,
			ParticipantKinds: []string{s(36), s(37), s(38)}, Start: true, Comment: jwt, CancellationReason: !jwt}}
	case 4:
		r.Body = &Body{}
	}
	if jwt {
		r.JWT = &JWT{Issuer: s(12), Subject: s(13), SDSUserID: s(14), RoleProfileID: s(15), ODSCode: s(16), Device: s(17)}
	}
	return r
}

// transactionFrom is recordFrom for a Transaction.
func transactionFrom(tm time.Time, ss []string, k int, seq uint64, status int, in, out int64, up, total float64, aborted bool) *Transaction {
	s := func(i int) string { return ss[(k+i)%len(ss)] }
	t := &Transaction{
		Seq: seq, Time: tm, TraceID: s(0), Status: status, BytesIn: in, BytesOut: out,
		UpstreamSeconds: up, TotalSeconds: total, ClientAborted: aborted,
		Decision: gpconnect.Decision(s(1)), Rule: gpconnect.Rule(s(2)), From: s(3), To: s(4), Interaction: s(5), Reason: s(6), Fault: s(7),
	}
	// Version 3 members, in several shapes: none, some, all; an entry
	// count of zero (present) and a map of several types, its keys
	// arbitrary strings so their order and escaping are held to
	// json.Marshal too.
	if k%3 != 0 {
		t.AuditSeq = seq ^ uint64(k)
		t.RespContentType, t.RespContentEncoding = s(8), s(9)
		t.ProviderCode, t.ProviderIssueCode = s(10), s(11)
		n := (k - 1) % 3 * status
		t.Entries = &n
		if k%3 == 2 {
			t.EntryTypes = map[string]int{s(12): status, s(13): int(in), s(14): 0}
		}
	}
	// Version 4 members on every other case.
	if k%2 == 0 {
		t.Location, t.ETag = s(15), s(16)
	}
	return t
}

// TestEncodeMatchesJSON compares the hand-written encoders with
// json.Marshal over the edge cases of every field type and many random
// combinations; the hash chain depends on the bytes being identical.
func TestEncodeMatchesJSON(t *testing.T) {
	ss := encodeStrings()
	fs := encodeFloats()
	ts := encodeTimes()
	ints := []int{0, 1, -1, 200, 502, math.MaxInt32, math.MinInt32, math.MaxInt, math.MinInt}
	int64s := []int64{0, 1, -1, 245, math.MaxInt64, math.MinInt64}
	seqs := []uint64{0, 1, 42, math.MaxUint64}

	checkRecord(t, &Record{})
	checkRecord(t, &Record{JWT: &JWT{}})
	checkRecord(t, sampleRecord(1))
	checkTransaction(t, &Transaction{})
	checkTransaction(t, benchTransaction())
	n := 0
	for i, s := range ss {
		one := []string{s}
		checkRecord(t, recordFrom(ts[2], one, 0, 200, true))
		checkTransaction(t, transactionFrom(ts[2], one, 0, 0, 200, 1, 2, 0.5, 1, false))
		checkRecord(t, recordFrom(ts[2], ss, i, 200, i%2 == 0))
		n += 3
	}
	for i, tm := range ts {
		checkRecord(t, recordFrom(tm, ss, i, 200, false))
		checkTransaction(t, transactionFrom(tm, ss, i, 1, 200, 0, 0, 0.001, 0.002, true))
		n += 2
	}
	for i, f := range fs {
		for j, g := range fs {
			checkTransaction(t, transactionFrom(ts[2], ss, i+j, seqs[(i+j)%len(seqs)], 200, 0, 0, f, g, j%2 == 0))
			n++
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		checkTransaction(t, transactionFrom(ts[2], ss, 0, 0, 200, 0, 0, f, 1, false))
		checkTransaction(t, transactionFrom(ts[2], ss, 0, 0, 200, 0, 0, 1, f, false))
		n += 2
	}
	for i, v := range ints {
		checkRecord(t, recordFrom(ts[2], ss, i, v, true))
		for j, w := range int64s {
			checkTransaction(t, transactionFrom(ts[2], ss, i+j, seqs[j%len(seqs)], v, w, -w, 0, 0, false))
			n += 2
		}
	}

	rng := rand.New(rand.NewPCG(1, 2))
	randString := func() string {
		if rng.IntN(4) == 0 {
			return ss[rng.IntN(len(ss))]
		}
		b := make([]byte, rng.IntN(24))
		for i := range b {
			switch rng.IntN(3) {
			case 0:
				b[i] = byte(rng.IntN(256))
			default:
				b[i] = byte(' ' + rng.IntN(95))
			}
		}
		if rng.IntN(3) == 0 {
			b = utf8.AppendRune(b, rune(rng.IntN(0x110000)))
		}
		return string(b)
	}
	randFloat := func() float64 {
		switch rng.IntN(4) {
		case 0:
			return fs[rng.IntN(len(fs))]
		case 1:
			return rng.Float64() * math.Pow(10, float64(rng.IntN(60)-30))
		}
		return math.Float64frombits(rng.Uint64())
	}
	for range 5000 {
		rs := make([]string, 32)
		for i := range rs {
			rs[i] = randString()
		}
		tm := time.Unix(rng.Int64N(1<<37)-1<<36, rng.Int64N(1e9)).In(time.FixedZone("", rng.IntN(2*24*3600)-24*3600))
		checkRecord(t, recordFrom(tm, rs, rng.IntN(60), int(rng.Uint64()), rng.IntN(2) == 0))
		checkTransaction(t, transactionFrom(tm, rs, 0, rng.Uint64()>>rng.IntN(64), int(rng.Int32()), rng.Int64(), -rng.Int64(), randFloat(), randFloat(), rng.IntN(2) == 0))
		n += 2
	}
	t.Logf("%d records and transactions identical to json.Marshal", n)
}

// TestEncodeRecordAsBefore checks what Append hands to the writer against
// the code it replaced, json.Marshal of a UTC copy, and that the caller's
// record is left alone.
func TestEncodeRecordAsBefore(t *testing.T) {
	zone := time.FixedZone("", 5*3600+30*60)
	for i := range 50 {
		r := sampleRecord(i)
		r.Time = r.Time.In(zone)
		r.Reason = encodeStrings()[i]
		if i%2 == 1 {
			r.JWT = nil
		}
		orig := *r
		rec := *r
		rec.Time = rec.Time.UTC()
		want, err := json.Marshal(&rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeRecord([]byte("x"), r)
		if err != nil || string(got) != "x"+string(want) {
			t.Fatalf("encodeRecord = %q, %v; want x%s", got, err, want)
		}
		if !reflect.DeepEqual(*r, orig) {
			t.Fatalf("encodeRecord changed the caller's record")
		}
	}
	r := sampleRecord(1)
	r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := encodeRecord(nil, r); err == nil || !strings.Contains(err.Error(), "year outside of range") {
		t.Fatalf("record in year 10000: %v, want json.Marshal's error", err)
	}
	r.Time = time.Time{}
	before := time.Now().UTC()
	b, err := encodeRecord(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil || back.Time.Before(before) || back.Time.Location() != time.UTC {
		t.Fatalf("zero time not set to now in UTC: %s %v", b, err)
	}
}

// TestEncodeTransactionAsBefore checks what QueueTransaction and
// AppendTransaction hand to the writer against the code it replaced, and
// that the copy kept for the ring is the one encoded.
func TestEncodeTransactionAsBefore(t *testing.T) {
	zone := time.FixedZone("", -3*3600)
	for i := range 50 {
		tr := sampleTransaction(i)
		tr.Seq = uint64(i)
		tr.Time = tr.Time.In(zone)
		tr.UpstreamSeconds = encodeFloats()[i%len(encodeFloats())]
		tr.Rule = gpconnect.Rule(encodeStrings()[i])
		orig := *tr
		c := *tr
		c.Seq = 0
		c.Time = c.Time.UTC()
		want, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		p, err := encodeTransaction(tr)
		if err != nil {
			t.Fatal(err)
		}
		if string(p.body) != string(want) || !reflect.DeepEqual(*p.tx, c) {
			t.Fatalf("encodeTransaction = %q, %+v; want %s, %+v", p.body, *p.tx, want, c)
		}
		if !reflect.DeepEqual(*tr, orig) {
			t.Fatalf("encodeTransaction changed the caller's transaction")
		}
		p.release()
	}
	tr := sampleTransaction(1)
	tr.TotalSeconds = math.NaN()
	if _, err := encodeTransaction(tr); err == nil || !strings.Contains(err.Error(), "unsupported value: NaN") {
		t.Fatalf("NaN duration: %v, want json.Marshal's error", err)
	}
}

// FuzzEncode holds appendRecord and appendTransaction to json.Marshal on
// arbitrary strings, numbers, times and zones.
func FuzzEncode(f *testing.F) {
	f.Add("trace-0001", "200000000359", "<a href=\"x\">&amp;</a>", "\u2028\xff\x00", int64(1735787045), int64(5), 0, 200, int64(245), 0.000812, 0.00231, uint64(0), true)
	f.Add("", "", "", "", int64(0), int64(0), 0, 0, int64(0), 0.0, 0.0, uint64(1), false)
	f.Add("\xed\xa0\x80", "\t\n\r\b\f\\\"", "日本語", "\x7f", int64(253402300799), int64(999999999), 3600, -1, int64(-1), 1e-7, 1e21, uint64(1<<63), false)
	f.Add("x", "y", "z", "w", int64(-62167219200), int64(0), 86400, 502, int64(1<<62), math.NaN(), math.Inf(1), uint64(7), true)
	f.Fuzz(func(t *testing.T, a, b, c, d string, sec, nsec int64, offset, status int, n int64, up, total float64, seq uint64, flag bool) {
		tm := time.Unix(sec, nsec).In(time.FixedZone("", offset))
		ss := []string{a, b, c, d}
		for k := range ss {
			checkRecord(t, recordFrom(tm, ss, k, status, flag))
		}
		checkRecord(t, recordFrom(tm, ss, 0, status, !flag))
		checkTransaction(t, transactionFrom(tm, ss, 0, seq, status, n, -n, up, total, flag))
		checkTransaction(t, transactionFrom(tm, ss, 1, 0, status, -n, n, total, up, !flag))
	})
}

// TestAppendHeadMatchesEncode holds the writer's head encoder to
// head.encode, which readHead and Verify were written against.
func TestAppendHeadMatchesEncode(t *testing.T) {
	files := []string{"audit-000001.jsonl", "transactions-123456.jsonl", "audit-1234567.jsonl", "", "a<b>&\"\u2028\xff", strings.Repeat("x", 300)}
	seqs := []uint64{0, 1, 99, 1 << 40, math.MaxUint64}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, f := range files {
		for _, seq := range seqs {
			var h [32]byte
			for i := range h {
				h[i] = byte(rng.Uint32())
			}
			want := head{File: f, Seq: seq, Hash: hexString(h)}.encode()
			got := appendHead([]byte("x"), f, seq, &h)
			if string(got) != "x"+string(want) {
				t.Fatalf("appendHead(%q, %d) = %q, want %q", f, seq, got[1:], want)
			}
		}
	}
}
