package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

var page = template.Must(template.ParseFS(assets, "assets/index.html"))

// heartbeat is how often an idle stream gets a comment line, so a page
// that is gone is noticed (the write fails) and the page knows it is live.
const heartbeat = 15 * time.Second

// writeWait bounds one write to a page: a page whose connection takes no
// more data is cut off after this long, so only its own handler waits.
const writeWait = 10 * time.Second

// contentSecurity lets the page load only its own script, style and stream:
// nothing is fetched from elsewhere, so it works offline.
const contentSecurity = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the console under /console on the admin listener whose
// address is addr. When that address is not loopback, the page carries a
// banner and the log a warning: the console shows every call's headers and
// decoded token to whoever can reach it.
func (c *Console) Handler(addr net.Addr) http.Handler {
	exposed := !isLoopback(addr)
	listen := ""
	if addr != nil {
		listen = addr.String()
	}
	if exposed {
		c.log.Warn("the admin listener is not on loopback: the console shows every call's headers and decoded token to anyone who can reach it; bind admin.listen to localhost",
			"admin_addr", listen)
	}
	var html bytes.Buffer
	if err := page.Execute(&html, struct {
		Exposed bool
		Listen  string
	}{exposed, listen}); err != nil {
		panic(err) // the embedded template is fixed at build time; a test runs it
	}
	mux := http.NewServeMux()
	index := func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		secure(h)
		w.Write(html.Bytes())
	}
	mux.HandleFunc("GET /console", index)
	mux.HandleFunc("GET /console/{$}", index)
	for name, kind := range map[string]string{"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"} {
		body, err := assets.ReadFile("assets/" + name)
		if err != nil {
			panic(err) // embedded at build time
		}
		mux.HandleFunc("GET /console/"+name, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", kind)
			w.Header().Set("Cache-Control", "no-cache")
			secure(w.Header())
			w.Write(body)
		})
	}
	mux.HandleFunc("GET /console/events", c.events)
	mux.HandleFunc("GET /console/api/entries/{id}", c.entry)
	return mux
}

func secure(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurity)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// isLoopback reports whether a listener's address is a loopback one.
func isLoopback(addr net.Addr) bool {
	if addr == nil {
		return true
	}
	host := addr.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// entry answers one kept entry's detail.
func (c *Console) entry(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "{\"error\":%q}\n", "the entry ID must be a whole number")
		return
	}
	e := c.find(id)
	if e == nil {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "{\"error\":%q}\n", fmt.Sprintf("entry %d is no longer kept: the console keeps the most recent %d", id, c.capacity))
		return
	}
	w.Write(e.detailJSON())
}

// events is the server-sent event stream: a "hello" event naming this run,
// then the kept entries after the page's Last-Event-ID (all of them on a
// first visit, or when the ID is of another run), then each new one as it
// comes. Each entry is an "entry" event whose id is "<run>-<entry ID>".
func (c *Console) events(w http.ResponseWriter, r *http.Request) {
	var after uint64
	if epoch, seq, ok := strings.Cut(r.Header.Get("Last-Event-ID"), "-"); ok && epoch == c.epoch {
		after, _ = strconv.ParseUint(seq, 10, 64)
	}
	sub, backlog := c.subscribe(after)
	if sub == nil {
		http.Error(w, "the console is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer c.unsubscribe(sub)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var buf bytes.Buffer
	send := func() bool {
		// Past the deadline the write fails and the stream ends; a server
		// without deadlines (a test recorder) just writes.
		_ = rc.SetWriteDeadline(time.Now().Add(time.Duration(c.writeWait.Load())))
		_, err := w.Write(buf.Bytes())
		buf.Reset()
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			c.failed.Add(1)
		}
		return err == nil
	}
	fmt.Fprintf(&buf, "retry: 1000\n\nevent: hello\ndata: {\"epoch\":%q}\n\n", c.epoch)
	for _, e := range backlog {
		c.writeEvent(&buf, e)
	}
	if !send() {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-sub.ch:
			if !ok {
				return // cut off for not keeping up, or the console closed
			}
			c.writeEvent(&buf, e)
			// Take whatever else is waiting, so a burst is one write.
			for more := true; more; {
				select {
				case e, ok := <-sub.ch:
					if !ok {
						send()
						return
					}
					c.writeEvent(&buf, e)
				default:
					more = false
				}
			}
		case <-tick.C:
			buf.WriteString(": live\n\n")
		case <-r.Context().Done():
			return
		}
		if !send() {
			return
		}
	}
}

func (c *Console) writeEvent(b *bytes.Buffer, e *entry) {
	b.WriteString("id: ")
	b.WriteString(c.epoch)
	b.WriteByte('-')
	b.WriteString(strconv.FormatUint(e.id, 10))
	b.WriteString("\nevent: entry\ndata: ")
	b.Write(e.summaryJSON())
	b.WriteString("\n\n")
}
