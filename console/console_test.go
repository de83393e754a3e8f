package console

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"sspemu/gpconnect"
	"sspemu/proxy"
	"sspemu/spinecall"
)

// deadline bounds every wait of these tests: a wait that runs out is a
// failure (something blocked), never a measure of speed.
const deadline = 30 * time.Second

var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9090}

const root = "https://localhost:9443/A20047/STU3/1/gpconnect"

// journey is a request as the proxy would tell it.
func journey(trace string, status int, rule gpconnect.Rule) *proxy.Journey {
	in, _ := gpconnect.Lookup(gpconnect.ReadMetadata)
	now := time.Now()
	j := &proxy.Journey{
		Time: now, TraceID: trace, From: "200000000359", To: "918999198993", Interaction: in.ID,
		InteractionName: in.Name, Method: "GET", Target: root + "/metadata", Status: status,
		Decision: "forwarded", Rule: rule, JWTMode: proxy.ModeEnforce, ServiceRoot: root, JWTSkew: 300 * time.Second,
		Authorization:  "Bearer " + gpconnect.DefaultTokenSpec(in, root, now).Encode(),
		RequestHeader:  http.Header{"Accept": {gpconnect.MIMEJSON}},
		ResponseHeader: http.Header{"Content-Type": {gpconnect.MIMEJSON}},
		Steps:          []proxy.Step{{Actor: proxy.ActorSSP, Name: "tls", Verdict: proxy.VerdictPassed}},
	}
	if rule != "" {
		j.Decision = "refused"
	}
	return j
}

// serve runs the console's handler; each stream's handler reports its end
// on ended, so a test can wait for a stream to finish. With smallBuffers,
// the server's sockets get a tiny send buffer, so a page that stops
// reading stops the stream's writes after a few kilobytes.
func serve(t *testing.T, c *Console, smallBuffers ...bool) (base string, ended chan struct{}) {
	t.Helper()
	ended = make(chan struct{}, 16)
	h := c.Handler(loopback)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.URL.Path == "/console/events" {
			ended <- struct{}{}
		}
	}))
	if len(smallBuffers) > 0 && smallBuffers[0] {
		srv.Listener = smallSendBuffer{srv.Listener}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, ended
}

type smallSendBuffer struct{ net.Listener }

func (l smallSendBuffer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// stream is a page's EventSource, read line by line.
type stream struct {
	resp *http.Response
	r    *bufio.Reader
}

func openStream(t *testing.T, base, lastID string) *stream {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/console/events", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("stream content type %q", ct)
	}
	return &stream{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads events until one of type entry, and returns its id and data.
func (s *stream) next(t *testing.T) (string, summary) {
	t.Helper()
	type result struct {
		id  string
		sum summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		var id, event, data string
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				done <- result{err: err}
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "event: "):
				event = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			case line == "" && event == "entry":
				var sum summary
				err := json.Unmarshal([]byte(data), &sum)
				done <- result{id, sum, err}
				return
			case line == "":
				id, event, data = "", "", ""
			}
		}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.id, r.sum
	case <-time.After(deadline):
		t.Fatal("no event on the stream")
	}
	return "", summary{}
}

func TestStreamReplaysThenFollows(t *testing.T) {
	c := New(Options{})
	t.Cleanup(c.Close)
	base, _ := serve(t, c)
	for i := range 3 {
		c.Journey(journey(fmt.Sprintf("trace-%d", i), 200, ""))
	}
	c.Handshake(&proxy.Handshake{Time: time.Now(), Client: "127.0.0.1:5000", Reason: proxy.HandshakeNoCertificate, Advice: "send a certificate"})
	// The stream replays what was kept when it opened. The console's
	// goroutine may not have taken all four yet, so read until the fourth.
	s := openStream(t, base, "")
	var got []string
	for len(got) < 4 {
		id, sum := s.next(t)
		if id != c.epoch+"-"+fmt.Sprint(sum.ID) {
			t.Errorf("event id %s, entry id %d", id, sum.ID)
		}
		got = append(got, sum.TraceID+"/"+sum.Outcome)
	}
	want := []string{"trace-0/forwarded", "trace-1/forwarded", "trace-2/forwarded", "/tls"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("replayed %v, want %v", got, want)
	}
	c.Journey(journey("trace-live", 403, "receiver"))
	if _, sum := s.next(t); sum.TraceID != "trace-live" || sum.Outcome != "refused" || sum.Rule != "receiver" {
		t.Errorf("live entry %+v", sum)
	}
	// A page that reconnects says what it has: it gets only what is newer.
	s2 := openStream(t, base, c.epoch+"-4")
	if id, sum := s2.next(t); id != c.epoch+"-5" || sum.TraceID != "trace-live" {
		t.Errorf("after Last-Event-ID 4: id %s %+v", id, sum)
	}
	// A page that saw another run of sspemu gets everything again.
	s3 := openStream(t, base, "otherrun-4")
	if id, sum := s3.next(t); id != c.epoch+"-1" || sum.TraceID != "trace-0" {
		t.Errorf("after the Last-Event-ID of another run: id %s %+v", id, sum)
	}
}

// TestStuckPageNeverBlocksTheSSP keeps a page open that reads nothing, with
// a tiny receive window, while far more than its queue and socket hold is
// published: every publish returns, the stuck page is cut off, and a page
// that reads still gets the newest entry.
func TestStuckPageNeverBlocksTheSSP(t *testing.T) {
	c := New(Options{})
	c.writeWait.Store(int64(200 * time.Millisecond))
	t.Cleanup(c.Close)
	base, ended := serve(t, c, true)

	d := net.Dialer{Control: func(_, _ string, raw syscall.RawConn) error {
		var serr error
		raw.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024) })
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /console/events HTTP/1.1\r\nHost: x\r\n\r\n")
	// Read until the page has its first entry, so it is subscribed, then
	// read nothing more.
	c.Journey(journey("first", 200, ""))
	conn.SetReadDeadline(time.Now().Add(deadline))
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("the page never got its first entry: %v", err)
		}
		if strings.Contains(line, `"trace_id":"first"`) {
			break
		}
	}

	big := strings.Repeat("x", 1024)
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := range 600 {
			j := journey(fmt.Sprintf("bulk-%d", i), 403, "receiver")
			j.Reason = big // 1 KiB a summary: far more than the sockets hold
			c.Journey(j)
		}
		c.Journey(journey("last", 200, ""))
	}()
	select {
	case <-published:
	case <-time.After(deadline):
		t.Fatal("publishing blocked behind a page that reads nothing")
	}
	select {
	case <-ended:
	case <-time.After(deadline):
		t.Fatal("the stuck page's stream was never cut off")
	}
	// Its stream ends either way: cut off when its queue filled, or its
	// write timed out first (the page holds the connection open).
	if c.disconnect.Load()+c.failed.Load() == 0 {
		t.Error("the stuck page's stream ended, but neither cut off nor timed out")
	}
	t.Logf("pages cut off: %d, writes timed out: %d, journeys dropped at the queue: %d", c.disconnect.Load(), c.failed.Load(), c.dropped.Load())

	// The console goes on: a new page gets entries, and a journey
	// published now reaches it.
	c.writeWait.Store(int64(deadline))
	// The queue is lossy: offer the last journey once the burst has left
	// it, or it may be dropped as designed.
	for stop := time.Now().Add(deadline); len(c.in) > 0; {
		if time.Now().After(stop) {
			t.Fatal("the console's queue never drained")
		}
		time.Sleep(time.Millisecond)
	}
	c.Journey(journey("after", 200, ""))
	follow(t, base, "after")
}

// follow reads the stream as an EventSource does, reconnecting with the
// last ID it saw when the console cuts it off (as it may while a burst is
// still being fanned out), until it sees the entry with the given trace ID.
func follow(t *testing.T, base, trace string) {
	t.Helper()
	stop := time.Now().Add(deadline)
	last := ""
	for time.Now().Before(stop) {
		req, _ := http.NewRequest("GET", base+"/console/events", nil)
		req.Header.Set("Last-Event-ID", last)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if id, ok := strings.CutPrefix(line, "id: "); ok {
				last = id
			}
			if strings.Contains(line, `"trace_id":"`+trace+`"`) {
				resp.Body.Close()
				return
			}
		}
		resp.Body.Close()
	}
	t.Fatalf("the entry %s never reached a page", trace)
}

// TestFullPageIsCutOff fills a page's queue: the console closes it rather
// than wait, and forgets it.
func TestFullPageIsCutOff(t *testing.T) {
	c := New(Options{})
	t.Cleanup(c.Close)
	sub, _ := c.subscribe(0)
	reader, _ := c.subscribe(0)
	for i := range subscriberLen + 1 {
		c.add(item{j: journey(fmt.Sprint(i), 200, "")})
		<-reader.ch // this page keeps up
	}
	n := 0
	for range sub.ch {
		n++
	}
	if n != subscriberLen || c.disconnect.Load() != 1 {
		t.Errorf("full page: %d entries before it was closed, %d pages cut off; want %d and 1", n, c.disconnect.Load(), subscriberLen)
	}
	c.mu.Lock()
	_, stillSub := c.subs[sub]
	_, readerSub := c.subs[reader]
	c.mu.Unlock()
	if stillSub || !readerSub {
		t.Errorf("after the cut: full page subscribed %v, reading page subscribed %v", stillSub, readerSub)
	}
	c.unsubscribe(sub) // a handler ending after the cut is harmless
}

// TestGonePageIsForgotten closes a page: its stream ends and it is no
// longer fanned out to.
func TestGonePageIsForgotten(t *testing.T) {
	c := New(Options{})
	t.Cleanup(c.Close)
	base, ended := serve(t, c)
	s := openStream(t, base, "")
	c.Journey(journey("one", 200, ""))
	s.next(t)
	s.resp.Body.Close()
	select {
	case <-ended:
	case <-time.After(deadline):
		t.Fatal("the stream of a closed page did not end")
	}
	c.mu.Lock()
	n := len(c.subs)
	c.mu.Unlock()
	if n != 0 {
		t.Errorf("%d streams still subscribed after the page went", n)
	}
}

func TestCloseEndsStreamsAndDropsLaterValues(t *testing.T) {
	c := New(Options{})
	base, ended := serve(t, c)
	s := openStream(t, base, "")
	c.Journey(journey("one", 200, ""))
	s.next(t)
	c.Close()
	select {
	case <-ended:
	case <-time.After(deadline):
		t.Fatal("Close did not end the open stream")
	}
	before := c.Dropped()
	for range 2 * queueLen {
		c.Journey(journey("late", 200, ""))
	}
	c.Handshake(&proxy.Handshake{})
	if c.Dropped() == before {
		t.Error("values offered after Close were not dropped")
	}
	c.Close() // twice is fine
	resp, err := http.Get(base + "/console/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a stream opened after Close: %d, want 503", resp.StatusCode)
	}
}

func TestRingKeepsTheNewest(t *testing.T) {
	c := New(Options{Capacity: 3, Handshakes: 2})
	t.Cleanup(c.Close)
	base, _ := serve(t, c)
	for i := range 5 {
		c.Journey(journey(fmt.Sprintf("t%d", i), 200, ""))
		c.Handshake(&proxy.Handshake{Client: fmt.Sprintf("c%d", i), Reason: proxy.HandshakeAborted})
	}
	// Wait for the tenth and last entry.
	s := openStream(t, base, "")
	for {
		if _, sum := s.next(t); sum.ID == 10 {
			break
		}
	}
	if got := c.Handshakes(); len(got) != 2 || got[0].Client != "c4" || got[1].Client != "c3" {
		t.Errorf("handshakes kept %+v, want c4 then c3", got)
	}
	for id, want := range map[int]int{10: 200, 8: 200, 7: 404, 1: 404} {
		resp, err := http.Get(fmt.Sprintf("%s/console/api/entries/%d", base, id))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("entry %d: %d %s, want %d", id, resp.StatusCode, body, want)
		}
		if want == 404 && !strings.Contains(string(body), "keeps the most recent 3") {
			t.Errorf("entry %d gone, but the answer does not say why: %s", id, body)
		}
	}
}

func TestDetail(t *testing.T) {
	c := New(Options{})
	t.Cleanup(c.Close)
	base, _ := serve(t, c)
	c.Journey(journey("detail", 200, ""))
	s := openStream(t, base, "")
	s.next(t)
	resp, err := http.Get(base + "/console/api/entries/1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var d struct {
		detail
		Journey struct {
			RequestHeader http.Header `json:"request_header"`
		} `json:"journey"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if d.TraceID != "detail" || len(d.Steps) != 1 || d.JWT == nil || !d.JWT.Complete || len(d.JWT.Claims) != len(claimOrder) {
		t.Errorf("detail %s", body)
	}
	for _, cl := range d.JWT.Claims {
		if cl.Verdict != proxy.VerdictPassed || cl.Value == "" {
			t.Errorf("claim %+v of a valid token", cl)
		}
	}
	if a := d.Journey.RequestHeader.Get("Authorization"); !strings.Contains(a, "decoded") {
		t.Errorf("Authorization shown as %q", a)
	}
	if strings.Contains(string(body), "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0") {
		t.Error("the detail carries the raw token")
	}
	for path, want := range map[string]int{"/console/api/entries/x": 400, "/console/api/entries/99": 404} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

func TestPageAndAssets(t *testing.T) {
	tests := []struct {
		addr    net.Addr
		exposed bool
	}{
		{loopback, false},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 9090}, false},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 9090}, true},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 9090}, true},
		{&net.TCPAddr{IP: net.IPv4(192, 168, 1, 20), Port: 9090}, true},
	}
	for _, tt := range tests {
		var logs bytes.Buffer
		c := New(Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		srv := httptest.NewServer(c.Handler(tt.addr))
		for _, path := range []string{"/console", "/console/"} {
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("%s %s: %d %v", tt.addr, path, resp.StatusCode, resp.Header)
			}
			if got := strings.Contains(string(body), `id="exposed"`); got != tt.exposed {
				t.Errorf("%s: banner shown %v, want %v", tt.addr, got, tt.exposed)
			}
			if tt.exposed && !strings.Contains(string(body), tt.addr.String()) {
				t.Errorf("%s: the banner does not name the address", tt.addr)
			}
		}
		if got := strings.Contains(logs.String(), "not on loopback"); got != tt.exposed {
			t.Errorf("%s: warning logged %v, want %v: %s", tt.addr, got, tt.exposed, logs.String())
		}
		for path, kind := range map[string]string{"/console/console.js": "text/javascript", "/console/console.css": "text/css"} {
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), kind) || len(body) < 1000 {
				t.Errorf("%s: %d %s, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
			}
			if bytes.Contains(body, []byte("http://")) || bytes.Contains(body, []byte("https://fonts")) {
				t.Errorf("%s refers to another site", path)
			}
		}
		srv.Close()
		c.Close()
	}
}

// TestPublishIsCheap bounds what the proxy pays per journey: one
// non-blocking send, no allocation.
func TestPublishIsCheap(t *testing.T) {
	c := New(Options{})
	t.Cleanup(c.Close)
	j := journey("cheap", 200, "")
	if n := testing.AllocsPerRun(1000, func() { c.Journey(j) }); n != 0 {
		t.Errorf("Journey allocates %v times per call, want 0", n)
	}
}

// TestNoPageNoWork keeps a journey without judging or encoding it until a
// page asks: with no page open the console costs the SSP's machine next to
// nothing.
func TestNoPageNoWork(t *testing.T) {
	c := New(Options{})
	t.Cleanup(c.Close)
	c.add(item{j: journey("idle", 200, "")})
	e := c.find(1)
	if e == nil || e.summary != nil || e.detail != nil {
		t.Fatalf("entry %+v: encoded before any page asked", e)
	}
	if !strings.Contains(string(e.summaryJSON()), `"trace_id":"idle"`) || e.detail != nil {
		t.Errorf("the summary alone is encoded when the stream needs it: %s", e.summary)
	}
}

// TestSpineCall: a consumer's call to PDS or SDS is streamed as an entry of
// its own kind, with no ASIDs, and its detail is one step on the service's
// lifeline.
func TestSpineCall(t *testing.T) {
	c := New(Options{})
	t.Cleanup(c.Close)
	base, _ := serve(t, c)
	c.SpineCall(spinecall.Call{Service: spinecall.PDS, Time: time.Now(), Client: "127.0.0.1:4000", Method: "GET",
		Request: "/personal-demographics/FHIR/R4/Patient?family=Smith", Status: 200, Results: 2, RequestID: "rid-1"})
	c.SpineCall(spinecall.Call{Service: spinecall.LDAP, Time: time.Now(), Client: "LDAP connection 1", Method: "search",
		Request: `base "o=nhs" filter (objectClass=*)`, Status: 32, Result: "No Such Object"})
	s := openStream(t, base, "")
	_, sum := s.next(t)
	if sum.Kind != "pds" || sum.Outcome != "pds" || sum.TraceID != "rid-1" || sum.Status != 200 || sum.Results == nil || *sum.Results != 2 ||
		sum.From != "" || sum.To != "" || !strings.Contains(sum.Request, "family=Smith") || sum.Client != "127.0.0.1:4000" {
		t.Errorf("pds summary %+v", sum)
	}
	if _, sum = s.next(t); sum.Kind != "ldap" || sum.Status != 32 || sum.Token != "No Such Object" || *sum.Results != 0 {
		t.Errorf("ldap summary %+v", sum)
	}
	for id, want := range map[int]proxy.Step{
		1: {Actor: "pds", Name: "GET /personal-demographics/FHIR/R4/Patient?family=Smith", Verdict: proxy.VerdictPassed, Status: 200},
		2: {Actor: "sds", Name: `search base "o=nhs" filter (objectClass=*)`, Verdict: proxy.VerdictFailed, Detail: "No Such Object"},
	} {
		resp, err := http.Get(base + "/console/api/entries/" + fmt.Sprint(id))
		if err != nil {
			t.Fatal(err)
		}
		var d detail
		err = json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Steps) != 1 || d.Steps[0] != want || d.Spine == nil || d.Journey != nil {
			t.Errorf("entry %d: steps %+v spine %+v", id, d.Steps, d.Spine)
		}
	}
}
