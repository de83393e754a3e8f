// Package audit keeps the SSP's durable, tamper-evident audit and transaction
// logs, verifies their hash chains and answers queries over recent
// transactions.
//
// On disk a directory holds two independent chains, each a numbered set of
// JSON-lines files that rotate by size:
//
//	audit-000001.jsonl, audit-000002.jsonl, ...               one line per request
//	transactions-000001.jsonl, ...                            one line per finished request
//	audit.head, transactions.head                             the last durable seq and hash of each chain
//
// Every line is a JSON object that starts with "seq" (1, 2, 3, ... across
// all files of the chain) and "prev" (the previous line's hash; 64 zeros for
// seq 1), then the record's own fields, and ends with "hash": the SHA-256 of
// the line's bytes with the final `,"hash":"..."` member removed (so the
// content ends in "}"). Because the hash covers the exact bytes and the next
// line repeats it, an edit, a deletion or a reordering is pinned to the
// record that was touched; see Verify for what can and cannot be detected.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"sspemu/gpconnect"
)

// JWT holds the decoded GP Connect JWT claims the SSP must log; never the raw
// token, which the audit has no need to keep.
type JWT struct {
	Issuer        string `json:"iss"`
	Subject       string `json:"sub"`
	SDSUserID     string `json:"sds_user_id"`
	RoleProfileID string `json:"role_profile_id"`
	ODSCode       string `json:"ods"`
	Device        string `json:"device"`
}

// Record is the audit entry of one request, made durable before the request
// is forwarded or refused. It deliberately has no field for a request body
// or a key, so neither can reach the log.
type Record struct {
	Time              time.Time `json:"time"`
	TraceID           string    `json:"trace_id"`
	From              string    `json:"from"`
	To                string    `json:"to"`
	Interaction       string    `json:"interaction"`
	Method            string    `json:"method"`
	Target            string    `json:"target"`
	ClientSubject     string    `json:"client_subject"`
	ClientFingerprint string    `json:"client_fingerprint"`
	JWT               *JWT      `json:"jwt,omitempty"`

	// Decision and Rule are the vocabulary of the request path; a
	// practice's record names, as its rule, the error code it answered
	// with (a practice has no SSP rules) or fault.
	Decision gpconnect.Decision `json:"decision"`
	Rule     gpconnect.Rule     `json:"rule"`

	Status int    `json:"status"`
	Token  string `json:"token"`
	Reason string `json:"reason"`
	// Fault names the fault rules (faults package) that acted on the
	// request, comma-separated; empty, and absent from the line, when none
	// did, so records written before faults existed read and verify as
	// they were.
	Fault string `json:"fault,omitempty"`

	// The members below came with record version 2 (V == 2), for the
	// assurance report (sspemu report): what the consumer's connection and
	// request looked like, and each JWT claim's verdict. A version 1
	// record has none of them and reads as it was; the report then says
	// "not recorded by this audit version" rather than "not met".

	// V is the record format's version: 2 for records with the members
	// below; absent (0) for the first format.
	V int `json:"v,omitempty"`
	// TLSVersion and TLSCipher name the consumer connection's negotiated
	// protocol ("TLS 1.2") and cipher suite (its IANA name).
	TLSVersion string `json:"tls_version,omitempty"`
	TLSCipher  string `json:"tls_cipher,omitempty"`
	// Proto is the HTTP version of the request ("HTTP/1.1", "HTTP/2.0").
	Proto string `json:"proto,omitempty"`
	// Accept, ContentType and AcceptEncoding are the request headers as
	// sent, cut to 200 bytes; nil when the header was absent, so absent
	// and empty differ (GPC-SPN-TST-06 asks for no Accept at all).
	Accept         *string `json:"accept,omitempty"`
	ContentType    *string `json:"content_type,omitempty"`
	AcceptEncoding *string `json:"accept_encoding,omitempty"`
	// TransferEncoding is the request's transfer codings (Go removes the
	// header itself from the header map), comma-separated.
	TransferEncoding string `json:"transfer_encoding,omitempty"`
	// Claims holds one verdict per JWT claim when the jwt rule ran
	// (gpconnect.JWTPolicy.Verdicts); absent when it did not.
	Claims []ClaimVerdict `json:"jwt_claims,omitempty"`

	// The members below came with record version 3: what the client
	// certificate the handshake verified says of itself (GPC-SPN-TST-03
	// asks what was "valid"). Absent without a client certificate.

	// ClientIssuer is the certificate's issuer DN; ClientSerial its
	// serial number in lowercase hex; ClientNotAfter the end of its
	// validity, RFC 3339 in UTC.
	ClientIssuer   string `json:"client_issuer,omitempty"`
	ClientSerial   string `json:"client_serial,omitempty"`
	ClientNotAfter string `json:"client_not_after,omitempty"`

	// The members below came with record version 4: what the request
	// asked of a version (If-Match) and what its body said, as typed,
	// bounded facts (the report decides the Register Patient and booking
	// tests from them). A request without them leaves them out.

	// IfMatch is the If-Match header as sent, cut to 200 bytes; nil when
	// it was absent (amend and cancel send the appointment's ETag).
	IfMatch *string `json:"if_match,omitempty"`
	// Body summarises the FHIR body of a POST or PUT the SSP forwarded
	// (proxy's summariseBody); nil for a request without one.
	Body *Body `json:"body,omitempty"`
}

// Body is the summary of a request's FHIR body that the audit keeps: the
// facts the consumer tests hinge on, never the body itself. It holds no
// name, address, telecom value or date of the patient, only whether they
// were there (and their use codes); the NHS number, which the audit
// already keeps in the target of a search, is the one value kept.
type Body struct {
	// Format is "json" or "xml" (the Content-Type, or the first byte);
	// ResourceType the body's resourceType (cut to 64 bytes).
	Format       string `json:"format"`
	ResourceType string `json:"resource_type,omitempty"`
	// Error says why the body could not be read as FHIR ("not FHIR JSON",
	// "not FHIR XML", "encoded": a Content-Encoding the summary does not
	// undo); the members below are then absent.
	Error string `json:"error,omitempty"`
	// Parameters are the names of a Parameters resource's parameters, in
	// order (at most 8, each cut to 64 bytes).
	Parameters []string `json:"parameters,omitempty"`
	// Patient summarises the Patient of a registerPatient parameter.
	Patient *BodyPatient `json:"patient,omitempty"`
	// Appointment summarises an Appointment (book, amend, cancel).
	Appointment *BodyAppointment `json:"appointment,omitempty"`
}

// BodyPatient is what a registration's Patient carried (Register a
// patient: identifier with system https://fhir.nhs.uk/Id/nhs-number,
// name, gender, birthDate, telecom, address, extension).
type BodyPatient struct {
	// NHSNumbers counts the identifiers with the NHS number system;
	// NHSNumber is the first one's value (cut to 20 bytes, "" when blank),
	// NHSNumberValid whether it passes the modulus 11 check, and
	// NHSNumberStatus the code of its NHSNumberVerificationStatus
	// extension, if any.
	NHSNumbers      int    `json:"nhs_numbers"`
	NHSNumber       string `json:"nhs_number,omitempty"`
	NHSNumberValid  bool   `json:"nhs_number_valid"`
	NHSNumberStatus string `json:"nhs_number_status,omitempty"`
	// Names counts the names; Official those with use official; Family
	// and Given whether the official name (else the first) has them.
	Names    int  `json:"names"`
	Official int  `json:"official_names"`
	Family   bool `json:"family"`
	Given    bool `json:"given"`
	// Gender is the gender code as sent (cut to 16 bytes); BirthDate
	// whether a birth date was there.
	Gender    string `json:"gender,omitempty"`
	BirthDate bool   `json:"birth_date"`
	// Telecoms counts the telecoms and TelecomUses gives each one's
	// "system:use" (at most 8); Addresses and AddressUses the same for
	// the addresses' use.
	Telecoms    int      `json:"telecoms"`
	TelecomUses []string `json:"telecom_uses,omitempty"`
	Addresses   int      `json:"addresses"`
	AddressUses []string `json:"address_uses,omitempty"`
	// RegistrationDetails is whether the Patient carries the
	// registrationDetails extension, which a consumer SHALL NOT send.
	RegistrationDetails bool `json:"registration_details"`
}

// BodyAppointment is what an Appointment carried (GPConnect-Appointment-1).
type BodyAppointment struct {
	// Status is the status code as sent (cut to 32 bytes).
	Status string `json:"status,omitempty"`
	// Slots counts the slot references; Participants the participants,
	// and ParticipantKinds the resource type each actor references
	// (Patient, Practitioner, Location; at most 8).
	Slots            int      `json:"slots"`
	Participants     int      `json:"participants"`
	ParticipantKinds []string `json:"participant_kinds,omitempty"`
	// Start, End, Description and Comment are whether each was there;
	// CancellationReason whether the cancellation reason extension was.
	Start              bool `json:"start"`
	End                bool `json:"end"`
	Description        bool `json:"description"`
	Comment            bool `json:"comment"`
	CancellationReason bool `json:"cancellation_reason"`
}

// RecordVersion is the version new records are written with (Record.V).
// Version 2 added the TLS, header and claim members; version 3 the client
// certificate's issuer, serial and notAfter, and (in the transaction
// record of the same request) audit_seq and the answer's facts; version 4
// the If-Match header and the request body's summary (Body), and the
// answer's Location and ETag.
const RecordVersion = 4

// ClaimVerdict is one JWT claim's verdict in a record: passed, failed (with
// the rule's reason) or not judged.
type ClaimVerdict struct {
	Claim   string `json:"claim"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
}

// Transaction is the record of one finished request: what came back and how
// long it took, so slow providers and client aborts can be told apart.
type Transaction struct {
	// Seq is the record's place in the transaction chain; it is filled in
	// by Transactions and ignored by AppendTransaction.
	Seq             uint64    `json:"seq,omitempty"`
	Time            time.Time `json:"time"`
	TraceID         string    `json:"trace_id"`
	Status          int       `json:"status"`
	BytesIn         int64     `json:"bytes_in"`
	BytesOut        int64     `json:"bytes_out"`
	UpstreamSeconds float64   `json:"upstream_seconds"`
	TotalSeconds    float64   `json:"total_seconds"`
	ClientAborted   bool      `json:"client_aborted"`

	Decision gpconnect.Decision `json:"decision"`
	Rule     gpconnect.Rule     `json:"rule"`

	From        string `json:"from"`
	To          string `json:"to"`
	Interaction string `json:"interaction"`
	// Reason is the plain-language reason of a refusal or an error (the
	// Sspemu-Reason header); empty, and left out, for a forwarded request.
	Reason string `json:"reason,omitempty"`
	// Fault names the fault rules that acted, at the SSP or (from the
	// provider's Sspemu-Fault answer header) at the practice; omitted when
	// none did.
	Fault string `json:"fault,omitempty"`

	// The members below came with record version 3 (see RecordVersion);
	// each is left out when unknown, so older transactions read as they
	// were.

	// AuditSeq is the seq of the audit record of the same request, the
	// exact join key: a consumer may reuse Ssp-TraceID (GPC-SPN-TST-13).
	// Zero (absent) when no audit record was written.
	AuditSeq uint64 `json:"audit_seq,omitempty"`
	// RespContentType and RespContentEncoding are the answer's
	// Content-Type and Content-Encoding headers, cut to 200 bytes.
	RespContentType     string `json:"resp_content_type,omitempty"`
	RespContentEncoding string `json:"resp_content_encoding,omitempty"`
	// ProviderCode is the code of the first issue's details coding of the
	// OperationOutcome a provider answered a forwarded request with
	// (status 400 and above), and ProviderIssueCode that issue's FHIR
	// code; read from a bounded copy of the answer (see proxy's sniff).
	ProviderCode      string `json:"provider_code,omitempty"`
	ProviderIssueCode string `json:"provider_issue_code,omitempty"`
	// Entries is the number of entries of a searchset Bundle a provider
	// answered a search with (2xx), and EntryTypes the count per resource
	// type (included resources too); nil when not counted (not a search,
	// or an answer larger than the bounded copy).
	Entries    *int           `json:"entries,omitempty"`
	EntryTypes map[string]int `json:"entry_types,omitempty"`

	// Location and ETag are the answer's headers of those names, cut to
	// 200 bytes (record version 4): a booking's Location names the
	// appointment it created, an answer's ETag its version.
	Location string `json:"location,omitempty"`
	ETag     string `json:"etag,omitempty"`
}

// hashKey opens the last member of every line; its fixed shape lets the
// content be recovered byte for byte without re-encoding JSON.
const hashKey = `,"hash":"`

// hashSuffixLen is the length of `,"hash":"<64 hex>"}`.
const hashSuffixLen = len(hashKey) + 64 + 2

// zeroHash is the prev of the first record of a chain.
var zeroHash [32]byte

// appendLine appends the line for body (a JSON object) with the given seq
// and prev to dst, newline included, and returns the line's hash.
func appendLine(dst []byte, seq uint64, prev *[32]byte, body []byte) ([]byte, [32]byte) {
	start := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"prev":"`...)
	dst = hex.AppendEncode(dst, prev[:])
	dst = append(dst, '"')
	inner := bytes.TrimSpace(body)
	inner = bytes.TrimPrefix(inner, []byte("{"))
	inner = bytes.TrimSuffix(inner, []byte("}"))
	inner = bytes.TrimSpace(inner)
	if len(inner) > 0 {
		dst = append(dst, ',')
		dst = append(dst, inner...)
	}
	dst = append(dst, '}')
	sum := sha256.Sum256(dst[start:])
	dst = dst[:len(dst)-1]
	dst = append(dst, hashKey...)
	dst = hex.AppendEncode(dst, sum[:])
	dst = append(dst, "\"}\n"...)
	return dst, sum
}

// entry is what the chain needs from one line.
type entry struct {
	Seq    uint64
	Prev   [32]byte
	Hash   [32]byte // as written in the line
	Sum    [32]byte // computed from the line's content
	Notice string
}

// errMalformed marks a line that is not a chain record at all.
var errMalformed = errors.New("malformed record")

// parseLine reads one line (without its newline). It fails only when the
// line is not a well-formed record; a hash that does not match the content
// is reported through entry.Hash != entry.Sum so the caller can name it.
func parseLine(line []byte) (entry, error) {
	var e entry
	if len(line) < hashSuffixLen+2 || line[0] != '{' {
		return e, fmt.Errorf("%w: too short or not a JSON object", errMalformed)
	}
	suffix := line[len(line)-hashSuffixLen:]
	if !bytes.HasPrefix(suffix, []byte(hashKey)) || !bytes.HasSuffix(suffix, []byte(`"}`)) {
		return e, fmt.Errorf("%w: line does not end with the \"hash\" member", errMalformed)
	}
	hexHash := suffix[len(hashKey) : len(hashKey)+64]
	if !isLowerHex(hexHash) {
		return e, fmt.Errorf("%w: hash %q is not 64 lowercase hex digits", errMalformed, hexHash)
	}
	_, _ = hex.Decode(e.Hash[:], hexHash)

	var fields struct {
		Seq    *uint64 `json:"seq"`
		Prev   *string `json:"prev"`
		Hash   *string `json:"hash"`
		Notice string  `json:"notice"`
	}
	if err := json.Unmarshal(line, &fields); err != nil {
		return e, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if fields.Seq == nil || *fields.Seq == 0 {
		return e, fmt.Errorf("%w: missing or zero \"seq\"", errMalformed)
	}
	if fields.Prev == nil || len(*fields.Prev) != 64 || !isLowerHex([]byte(*fields.Prev)) {
		return e, fmt.Errorf("%w: \"prev\" is not 64 lowercase hex digits", errMalformed)
	}
	if fields.Hash == nil || *fields.Hash != string(hexHash) {
		return e, fmt.Errorf("%w: \"hash\" member does not match the line's end", errMalformed)
	}
	e.Seq = *fields.Seq
	_, _ = hex.Decode(e.Prev[:], []byte(*fields.Prev))
	e.Notice = fields.Notice

	h := sha256.New()
	h.Write(line[:len(line)-hashSuffixLen])
	h.Write([]byte("}"))
	h.Sum(e.Sum[:0])
	return e, nil
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func hexString(h [32]byte) string { return hex.EncodeToString(h[:]) }
